// The explorer's edit-to-image latency: `afterimage explore`'s server in this process on a free
// loopback port, one client sending logit edits one after another, as a dragged slider does.
import Afterimage
import AfterimageServer
import Foundation
import Torch

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// Times `edits` POST /api/reconstruct requests (one sample, 32×32) from request to decoded
/// PNG bytes, after `warmup` untimed ones; prints the latencies as JSON.
func measureExplorer(inverterPath: String, edits: Int, warmup: Int) throws {
  let inverter = try Inverter.load(inverterPath)
  let testSet = try DatasetSource(inverter.config.dataset).open(split: .test, resolution: inverter.config.resolution).dataset
  let explorer = try Explorer(columns: [.init(name: "bench", inverter: inverter, evaluation: nil)], testSet: testSet)
  let ready = DispatchSemaphore(value: 0)
  let port = LockedValue(0)
  let app = ExplorerServer.application(explorer: explorer, port: 0) { chosen in
    port.set(chosen)
    ready.signal()
  }
  let server = Task { try await app.runService() }
  ready.wait()
  let url = URL(string: "http://127.0.0.1:\(port.get())/api/reconstruct?column=0")!
  let classes = inverter.config.representationSize
  func edit(_ index: Int) throws -> Double {
    var delta = [Double](repeating: 0, count: classes)
    delta[index % classes] = Double(index % 40) / 4  // a slider moving in quarter steps
    var request = URLRequest(url: url)
    request.httpMethod = "POST"
    request.httpBody = try JSONSerialization.data(withJSONObject: ["image": "t\(index % 50)", "delta": delta])
    let done = DispatchSemaphore(value: 0)
    let outcome = LockedValue<Result<Data, Error>>(.failure(URLError(.unknown)))
    let start = DispatchTime.now().uptimeNanoseconds
    URLSession.shared.dataTask(with: request) { data, response, error in
      if let data, (response as? HTTPURLResponse)?.statusCode == 200 { outcome.set(.success(data)) } else {
        outcome.set(.failure(error ?? URLError(.badServerResponse)))
      }
      done.signal()
    }.resume()
    done.wait()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let data = try outcome.get().get()
    guard data.starts(with: [0x89, 0x50, 0x4E, 0x47]) else { throw URLError(.cannotDecodeContentData) }
    return seconds
  }
  for index in 0..<warmup { _ = try edit(index) }
  let latencies = try (0..<edits).map { try edit(warmup + $0) }
  server.cancel()
  printJSON(benchmarkFields("explorer", ["latencies_s": latencies, "resolution": inverter.config.resolution, "inverter": inverterPath]))
}

/// A value shared between threads behind a lock.
final class LockedValue<Value>: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Value
  init(_ value: Value) { self.value = value }
  func get() -> Value { lock.withLock { value } }
  func set(_ newValue: Value) { lock.withLock { value = newValue } }
}
