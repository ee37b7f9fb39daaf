import Foundation
import Torch

/// One thread that runs every tensor job of the server, one after another.
///
/// The server's request handlers run on SwiftNIO's threads. Tensor work there would give each of
/// those threads an OpenMP team of its own, and libtorch's modules are not meant to be called
/// from several threads at once; so handlers hand their work to this thread and await it.
final class TorchWorker: @unchecked Sendable {
  private let condition = NSCondition()
  private var jobs: [() -> Void] = []
  private var thread: Thread?

  init(name: String = "afterimage.torch") {
    let thread = Thread { [unowned self] in self.loop() }
    thread.name = name
    thread.stackSize = 8 << 20
    self.thread = thread
    thread.start()
  }

  private func loop() {
    while true {
      condition.lock()
      while jobs.isEmpty { condition.wait() }
      let job = jobs.removeFirst()
      condition.unlock()
      job()
    }
  }

  /// Runs `body` on the worker thread and returns its result (or rethrows its error).
  func run<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
    try await withCheckedThrowingContinuation { continuation in
      condition.lock()
      jobs.append {
        do {
          continuation.resume(returning: try body())
        } catch {
          continuation.resume(throwing: error)
        }
      }
      condition.signal()
      condition.unlock()
    }
  }
}
