import Afterimage
import AfterimageServer
import Foundation
import TestSupport
import Torch
import XCTest

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// The explorer's server on a free loopback port, driven by a real HTTP client: every route,
/// every bad input (a 4xx with a message, and the server still answering), and concurrent edits.
final class ExplorerServerTests: XCTestCase {
  static let root = parityScripts.deletingLastPathComponent().deletingLastPathComponent()
  nonisolated(unsafe) static var server: (base: URL, task: Task<Void, any Error>)?

  /// One server for the class: the shipped Shapes inverters, standard and robust, and the
  /// evaluation classifier.
  override func setUp() async throws {
    if Self.server != nil { return }
    let models = Self.root.appendingPathComponent("models")
    let inverters = try ["shapes-standard-fidelity", "shapes-robust-fidelity"].map {
      try Inverter.load(models.appendingPathComponent("inverters/\($0)").path)
    }
    let evaluation = try Classifiers.load(models.appendingPathComponent("eval/shapes").path)
    let columns = inverters.enumerated().map { Explorer.Column(name: ["standard", "robust"][$0.offset], inverter: $0.element, evaluation: evaluation) }
    let explorer = try Explorer(columns: columns, testSet: try ShapesDataset(split: .test, resolution: 32, count: 200))
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    let app = ExplorerServer.application(explorer: explorer, port: 0) { continuation.yield($0) }
    let task = Task { try await app.runService() }
    var iterator = ports.makeAsyncIterator()
    let running = await iterator.next()
    let port = try XCTUnwrap(running)
    Self.server = (URL(string: "http://127.0.0.1:\(port)")!, task)
  }

  override class func tearDown() {
    server?.task.cancel()
    server = nil
  }

  var base: URL { Self.server!.base }

  struct Reply {
    let status: Int
    let data: Data
    let headers: [AnyHashable: Any]
    var text: String { String(decoding: data, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
    var isPNG: Bool { data.starts(with: [0x89, 0x50, 0x4E, 0x47]) }
    func header(_ name: String) -> String? {
      headers.first { ($0.key as? String)?.lowercased() == name.lowercased() }?.value as? String
    }
  }

  func request(_ path: String, method: String = "GET", body: Data? = nil) async throws -> Reply {
    var request = URLRequest(url: URL(string: path, relativeTo: base)!)
    request.httpMethod = method
    request.httpBody = body
    request.timeoutInterval = 60
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as! HTTPURLResponse
    return Reply(status: http.statusCode, data: data, headers: http.allHeaderFields)
  }

  func post(_ path: String, json object: Any) async throws -> Reply {
    try await request(path, method: "POST", body: try JSONSerialization.data(withJSONObject: object))
  }

  func testEveryRouteAnswers() async throws {
    let page = try await request("/")
    XCTAssertEqual(page.status, 200)
    XCTAssertTrue(page.text.contains("<title>Afterimage explorer</title>") && page.text.contains("/api/reconstruct"))
    XCTAssertFalse(page.text.contains("http://") || page.text.contains("https://"), "the page fetches nothing from elsewhere")

    let columns = try await request("/api/inverters").json
    let inverters = try XCTUnwrap(columns["inverters"] as? [[String: Any]])
    XCTAssertEqual(inverters.map { $0["name"] as? String }, ["standard", "robust"])
    XCTAssertEqual((inverters[0]["classNames"] as? [String])?.count, 10)
    XCTAssertEqual(columns["testCount"] as? Int, 200)

    let strip = try await request("/api/images?page=1&per=8").json
    let images = try XCTUnwrap(strip["images"] as? [[String: Any]])
    XCTAssertEqual(images.map { $0["image"] as? String }, (8..<16).map { "t\($0)" })
    XCTAssertEqual(strip["pages"] as? Int, 25)
    let thumbnail = try await request("/api/image/t3")
    XCTAssertTrue(thumbnail.isPNG)
    XCTAssertEqual(try PNG.decode(thumbnail.data).shape, [3, 128, 128], "scaled 4× for the screen")

    let logits = try await post("/api/logits", json: ["image": "t3"]).json
    let values = try XCTUnwrap(logits["logits"] as? [[Double]])
    XCTAssertEqual(values.count, 2)
    XCTAssertEqual(values[0].count, 10)
    XCTAssertEqual((logits["softmax"] as? [[Double]])?[1].reduce(0, +) ?? 0, 1, accuracy: 1e-6)

    let plain = try await post("/api/reconstruct?column=0", json: ["image": "t3", "samples": 2])
    XCTAssertEqual(plain.status, 200, plain.text)
    XCTAssertTrue(plain.isPNG)
    XCTAssertEqual(try PNG.decode(plain.data).shape[2], 2 * 128 + 3 * 2, "two samples side by side")
    XCTAssertNotNil(plain.header("X-Latency-Ms").flatMap(Double.init))
    XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(plain.header("X-Verdicts")!.utf8)) as? [String])?.count, 2)
    let again = try await post("/api/reconstruct?column=0", json: ["image": "t3", "samples": 2])
    XCTAssertEqual(again.data, plain.data, "the same edit and seed give the same picture")
    var delta = [Double](repeating: 0, count: 10)
    delta[0] = 15
    let edited = try await post("/api/reconstruct?column=0", json: ["image": "t3", "samples": 2, "delta": delta])
    XCTAssertNotEqual(edited.data, plain.data, "raising a logit changes the reconstruction")
    let shiftedLogits = try await post("/api/reconstruct?column=1", json: ["image": "t3", "shift": 2.5, "scale": 0.5, "topK": 3, "noise": 0.1])
    XCTAssertEqual(shiftedLogits.status, 200, shiftedLogits.text)
    let walked = try await post("/api/reconstruct?column=1", json: ["image": "t3", "second": "t4", "alpha": 0.5, "transform": "rotation", "magnitude": 30])
    XCTAssertEqual(walked.status, 200, walked.text)

    let picture = try PNG.encode(Tensor.rand([3, 50, 70], generator: Generator(seed: 1)))
    let uploaded = try await request("/api/upload", method: "POST", body: picture).json
    let id = try XCTUnwrap(uploaded["image"] as? String)
    XCTAssertTrue(id.hasPrefix("u"))
    let uploadedPicture = try await request("/api/image/\(id)")
    XCTAssertEqual(try PNG.decode(uploadedPicture.data).shape, [3, 128, 128], "resized as the data set's images")
    let fromUpload = try await post("/api/reconstruct?column=1", json: ["image": id])
    XCTAssertTrue(fromUpload.isPNG)
  }

  func testBadInputGetsAClearErrorAndTheServerGoesOn() async throws {
    func expect(_ reply: Reply, _ status: Int, saying words: String, file: StaticString = #filePath, line: UInt = #line) {
      XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
      let message = (reply.json["error"] as? [String: Any])?["message"] as? String ?? ""
      XCTAssertTrue(message.contains(words), "expected '\(words)' in \(reply.text)", file: file, line: line)
    }
    expect(try await request("/api/upload", method: "POST", body: Data("not an image at all".utf8)), 400, saying: "neither PNG nor JPEG")
    expect(try await request("/api/upload", method: "POST", body: Data([0x89, 0x50, 0x4E, 0x47, 0, 1, 2])), 400, saying: "corrupt")
    expect(try await request("/api/upload", method: "POST", body: Data(count: ExplorerServer.uploadLimit + 1)), 413, saying: "over 10 MB")
    expect(try await request("/api/image/t200"), 404, saying: "no image 't200'")
    expect(try await request("/api/image/..%2F..%2Fetc%2Fpasswd"), 404, saying: "no image")
    expect(try await post("/api/reconstruct?column=2", json: ["image": "t0"]), 404, saying: "no inverter 2")
    expect(try await post("/api/reconstruct", json: ["image": "t0", "delta": [1, 2, 3]]), 400, saying: "delta has 3 values")
    expect(try await post("/api/reconstruct", json: ["image": "t0", "delta": [Double](repeating: 1e300, count: 10)]), 400, saying: "within ±10000")
    expect(try await request("/api/reconstruct", method: "POST", body: Data(#"{"image": "t0", "shift": 1e999}"#.utf8)), 400, saying: "not valid JSON")
    expect(try await post("/api/reconstruct", json: ["image": "t0", "samples": 40]), 400, saying: "samples must be 1 to 8")
    expect(try await post("/api/reconstruct", json: ["image": "t0", "topK": 0]), 400, saying: "topK must be 1 to 10")
    expect(try await post("/api/logits", json: ["image": "t0", "transform": "melt"]), 400, saying: "unknown transform 'melt'")
    expect(try await post("/api/logits", json: ["image": "t0", "second": "t1", "alpha": 2]), 400, saying: "alpha must be in [0, 1]")
    expect(try await post("/api/logits", json: ["second": "t1"]), 400, saying: "'image' is missing")
    expect(try await request("/api/logits", method: "POST", body: Data("{{".utf8)), 400, saying: "not")
    expect(try await request("/api/images?page=0&per=0"), 400, saying: "per-page 1 to 200")
    let after = try await request("/api/inverters")
    XCTAssertEqual(after.status, 200, "the server still answers")
  }

  /// The page edits logits, so an inverter of a feature map is refused with a message.
  func testAFeatureInverterIsRefusedWithAMessage() throws {
    let inverter = try Inverter.load(Self.root.appendingPathComponent("models/inverters/shapes-standard-pool-fidelity").path)
    XCTAssertEqual(inverter.config.representation, .features("pool"))
    XCTAssertThrowsError(try Explorer(columns: [.init(name: "pool", inverter: inverter, evaluation: nil)], testSet: try ShapesDataset(split: .test, count: 20))) {
      XCTAssertTrue("\($0)".contains("inverts features:pool, and the explorer edits logits"), "\($0)")
    }
  }

  func testConcurrentEditsAllAnswer() async throws {
    let clients = 16, edits = 50
    let results = try await withThrowingTaskGroup(of: [Bool].self) { group in
      for client in 0..<clients {
        group.addTask {
          var valid: [Bool] = []
          for edit in 0..<edits {
            var delta = [Double](repeating: 0, count: 10)
            delta[client % 10] = Double(edit) / 5
            let reply = try await self.post("/api/reconstruct?column=\(client % 2)", json: ["image": "t\(client)", "delta": delta, "seed": edit])
            valid.append(reply.status == 200 && reply.isPNG && (try? PNG.decode(reply.data)) != nil)
          }
          return valid
        }
      }
      var all: [Bool] = []
      for try await part in group { all += part }
      return all
    }
    XCTAssertEqual(results.count, clients * edits, "nothing dropped")
    XCTAssertTrue(results.allSatisfy { $0 }, "every response is a valid PNG: \(results.filter { !$0 }.count) were not")
  }
}
