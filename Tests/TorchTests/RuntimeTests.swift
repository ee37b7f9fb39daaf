import Foundation
import Torch
import XCTest

final class RuntimeTests: XCTestCase {
  /// A helper thread (the data loader's) can be limited to itself without shrinking the main
  /// thread's team, and its tensor operations still give the same answers.
  func testAHelperThreadRunsOnItsOwnWithoutChangingTheMainThread() {
    let mainThreads = Torch.threadCount
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var helperThreads = 0
    nonisolated(unsafe) var helperSum = 0.0
    let thread = Thread {
      Torch.useOneThreadOnThisThread()
      helperThreads = Torch.threadCount
      helperSum = Tensor.arange(0, 100_000).sum().item()  // large enough to be split across threads
      done.signal()
    }
    thread.start()
    done.wait()
    XCTAssertEqual(helperThreads, 1)
    XCTAssertEqual(Torch.threadCount, mainThreads)
    XCTAssertEqual(helperSum, Tensor.arange(0, 100_000).sum().item())
  }
}
