import Foundation
import Torch

/// The first `count` examples of a data set (the trainers' `trainCount`).
final class Subset: Dataset {
  let base: Dataset
  let count: Int
  init(_ base: Dataset, count: Int) throws {
    guard count > 0 && count <= base.count else {
      throw RunError("asked for \(count) examples of \(base.name), which has \(base.count)")
    }
    self.base = base
    self.count = count
  }
  var name: String { base.name }
  var channels: Int { base.channels }
  var resolution: Int { base.resolution }
  var classNames: [String] { base.classNames }
  func example(at index: Int) throws -> Example { try base.example(at: index) }
  func batch(at indices: [Int]) throws -> Batch { try base.batch(at: indices) }
}
