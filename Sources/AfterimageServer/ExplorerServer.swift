import Afterimage
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Torch

/// The explorer's web server: the page and a small JSON/PNG API over an `Explorer`.
///
///     GET  /                       the page (HTML, CSS and JavaScript in one response)
///     GET  /api/inverters          the columns: names, class names, resolution; the test-set size
///     GET  /api/images?page=&per=  a page of the test set with labels and predictions
///     GET  /api/image/:id          an image (t<index> or u<n>) as PNG, scaled for the screen
///     POST /api/upload             PNG or JPEG bytes (at most 10 MB) → {"image": "u<n>"}
///     POST /api/logits             {image, second?, alpha?, transform?, magnitude?} → logits, softmax
///     POST /api/reconstruct?column=N   an `Explorer.Edit` → PNG of the samples; the headers carry
///                                  X-Latency-Ms, X-Logits and X-Verdicts (JSON)
///
/// Request errors answer 400, 404 or 413 with a JSON message and the server goes on. Requests
/// name images and inverters by index only: no request can make the server read a file.
public enum ExplorerServer {
  /// Uploads larger than this are refused (413).
  public static let uploadLimit = 10 << 20

  struct Columns: ResponseEncodable {
    var inverters: [Explorer.ColumnInfo]
    var testCount: Int
    var transforms: [String]
  }
  struct Uploaded: ResponseEncodable {
    var image: String
  }
  struct Page: ResponseEncodable {
    var images: [Explorer.ImageInfo]
    var page: Int
    var pages: Int
  }

  /// The Hummingbird application serving `explorer` on `host:port` (port 0: any free port;
  /// `onRunning` receives the one chosen).
  public static func application(
    explorer: Explorer, host: String = "127.0.0.1", port: Int = 8080, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
  ) -> some ApplicationProtocol {
    let state = ExplorerState(explorer)
    let router = Router()
    router.get("/") { _, _ in
      Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: ExplorerPage.html)))
    }
    router.get("/api/inverters") { _, _ in
      try await state.run { explorer in
        Columns(inverters: explorer.info, testCount: explorer.testCount, transforms: ImageTransform.allCases.map(\.rawValue))
      }
    }
    router.get("/api/images") { request, _ in
      let page = request.uri.queryParameters.get("page", as: Int.self) ?? 0
      let per = request.uri.queryParameters.get("per", as: Int.self) ?? 24
      return try await state.run { explorer in
        Page(images: try explorer.images(page: page, perPage: per), page: page, pages: (explorer.testCount + max(per, 1) - 1) / max(per, 1))
      }
    }
    router.get("/api/image/:id") { _, context in
      let id = try context.parameters.require("id")
      let png = try await state.run { explorer in try PNG.encode(try explorer.picture(id)) }
      return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "max-age=3600"], body: .init(byteBuffer: ByteBuffer(bytes: png)))
    }
    router.post("/api/upload") { request, _ in
      let bytes = try await collect(request.body, limit: uploadLimit)
      return try await state.run { explorer in Uploaded(image: try explorer.upload(bytes)) }
    }
    router.post("/api/logits") { request, context in
      let edit = try await decodeEdit(request, context: context)
      return try await state.run { explorer in try explorer.logits(edit) }
    }
    router.post("/api/reconstruct") { request, context in
      let column = request.uri.queryParameters.get("column", as: Int.self) ?? 0
      let edit = try await decodeEdit(request, context: context)
      let start = DispatchTime.now().uptimeNanoseconds
      let (png, logits, verdicts) = try await state.run { explorer in
        let result = try explorer.reconstruct(edit, column: column)
        return (try PNG.encode(result.picture), result.logits, result.verdicts)
      }
      let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
      let encoder = JSONEncoder()
      var headers: HTTPFields = [.contentType: "image/png", .cacheControl: "no-store"]
      headers[HTTPField.Name("X-Latency-Ms")!] = String(format: "%.1f", milliseconds)
      headers[HTTPField.Name("X-Logits")!] = String(decoding: try encoder.encode(logits.map { ($0 * 1000).rounded() / 1000 }), as: UTF8.self)
      headers[HTTPField.Name("X-Verdicts")!] = String(decoding: try encoder.encode(verdicts), as: UTF8.self)
      return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: png)))
    }
    return Application(
      router: router, configuration: .init(address: .hostname(host, port: port), serverName: "afterimage-explorer"),
      onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
  }

  static func decodeEdit(_ request: Request, context: some RequestContext) async throws -> Explorer.Edit {
    let bytes = try await collect(request.body, limit: 1 << 20)
    do {
      return try JSONDecoder().decode(Explorer.Edit.self, from: bytes)
    } catch let error as DecodingError {
      throw HTTPError(.badRequest, message: "the request is not an edit: \(describe(error))")
    } catch {
      throw HTTPError(.badRequest, message: "the request is not JSON")
    }
  }

  /// The request body, refused with 413 past `limit` bytes.
  static func collect(_ body: RequestBody, limit: Int) async throws -> Data {
    var data = Data()
    for try await chunk in body {
      guard data.count + chunk.readableBytes <= limit else {
        throw HTTPError(.contentTooLarge, message: "the request body is over \(limit / (1 << 20)) MB")
      }
      data.append(contentsOf: chunk.readableBytesView)
    }
    return data
  }

  static func describe(_ error: DecodingError) -> String {
    switch error {
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
      let path = context.codingPath.map(\.stringValue).joined(separator: ".")
      return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
    case .keyNotFound(let key, _):
      return "'\(key.stringValue)' is missing"
    @unknown default:
      return "\(error)"
    }
  }
}

extension Explorer.LogitsInfo: ResponseEncodable {}

/// The explorer and the thread its tensor work runs on, turning its request errors into HTTP ones.
final class ExplorerState: @unchecked Sendable {
  private let explorer: Explorer
  private let worker = TorchWorker()

  init(_ explorer: Explorer) { self.explorer = explorer }

  func run<Result: Sendable>(_ body: @escaping @Sendable (Explorer) throws -> Result) async throws -> Result {
    let explorer = self.explorer
    do {
      return try await worker.run {
        try catchingTorchErrors { try body(explorer) }
      }
    } catch let error as Explorer.RequestError {
      switch error.kind {
      case .badRequest: throw HTTPError(.badRequest, message: error.message)
      case .notFound: throw HTTPError(.notFound, message: error.message)
      case .tooLarge: throw HTTPError(.contentTooLarge, message: error.message)
      }
    } catch let error as TorchError {
      throw HTTPError(.badRequest, message: error.message)
    } catch let error as RunError {
      throw HTTPError(.badRequest, message: "\(error)")
    }
  }
}
