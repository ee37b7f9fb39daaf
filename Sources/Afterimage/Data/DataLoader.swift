import Dispatch
import Foundation
import Torch

/// Batches from a data set in a seeded order, preparing the next batch on a background thread
/// while the caller trains on the current one.
///
///     let loader = DataLoader(dataset, batchSize: 64, shuffle: true, seed: 0)
///     for epoch in 0..<epochs {
///       try loader.epoch(epoch).forEachBatch { batch in … }   // batch.images [64, C, H, W]
///     }
///
/// `forEachBatch` throws the data set's error (an unreadable file); a plain `for batch in`
/// loop stops at such an error without a word unless it reads the iterator's `error` after.
public final class DataLoader {
  public let dataset: Dataset
  public let batchSize: Int
  public let shuffle: Bool
  public let dropLast: Bool
  public let seed: UInt64
  /// In a data-parallel job, this rank's part of every batch: rank r of N takes the r-th of N
  /// equal slices of each batch of `batchSize` (the same seeded order on every rank), so the N
  /// ranks together see exactly the batches one process would.
  public let shard: Shard?

  public struct Shard: Sendable {
    public var rank: Int
    public var count: Int
    public init(rank: Int, count: Int) {
      self.rank = rank
      self.count = count
    }
  }

  public init(_ dataset: Dataset, batchSize: Int, shuffle: Bool = true, dropLast: Bool = false, seed: UInt64 = 0, shard: Shard? = nil) {
    precondition(batchSize > 0, "batch size must be positive")
    precondition(shard.map { dropLast && batchSize % $0.count == 0 } ?? true, "a sharded loader drops the last batch and splits each batch evenly")
    self.dataset = dataset
    self.batchSize = batchSize
    self.shuffle = shuffle
    self.dropLast = dropLast
    self.seed = seed
    self.shard = shard
  }

  /// Batches per epoch.
  public var batchCount: Int {
    dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
  }

  /// The order of examples in `epoch`: a seeded permutation (Fisher–Yates), or 0..<count.
  public func order(epoch: Int) -> [Int] {
    var indices = Array(0..<dataset.count)
    guard shuffle else { return indices }
    var rng = SplitMix64(seed: seed, index: UInt64(epoch))
    indices.shuffle(using: &rng)
    return indices
  }

  /// The batches of `epoch` from batch `start` on (a resumed run skips those it has done without
  /// loading them), each prepared one step ahead on a background queue.
  public func epoch(_ epoch: Int, startingAt start: Int = 0) -> BatchSequence {
    let indices = order(epoch: epoch)
    let chunks = stride(from: 0, to: indices.count, by: batchSize).compactMap { start -> [Int]? in
      let chunk = Array(indices[start..<min(start + batchSize, indices.count)])
      guard !(dropLast && chunk.count < batchSize) else { return nil }
      guard let shard else { return chunk }
      let size = batchSize / shard.count
      return Array(chunk[(shard.rank * size)..<((shard.rank + 1) * size)])
    }
    return BatchSequence(dataset: dataset, chunks: Array(chunks.dropFirst(start)))
  }
}

/// One epoch's batches; iterating starts the background preparation.
public struct BatchSequence: Sequence {
  let dataset: Dataset
  let chunks: [[Int]]

  public func makeIterator() -> PrefetchingIterator { PrefetchingIterator(dataset: dataset, chunks: chunks) }

  /// Runs `body` on every batch in order; an error loading one is thrown, not swallowed.
  public func forEachBatch(_ body: (Batch) throws -> Void) throws {
    let batches = makeIterator()
    while let batch = batches.next() { try body(batch) }
    if let error = batches.error { throw error }
  }
}

/// Yields batches, loading batch i + 1 on a background queue while batch i is in use.
/// A data-set error (e.g. an unreadable file) stops the iteration; `error` says why.
public final class PrefetchingIterator: IteratorProtocol {
  let dataset: Dataset
  let chunks: [[Int]]
  private var position = 0
  private var pending: (group: DispatchGroup, box: ResultBox)?
  private let queue = DispatchQueue(label: "afterimage.loader")
  /// The error that ended the iteration early, if any.
  public private(set) var error: Error?

  final class ResultBox: @unchecked Sendable {
    var result: Result<Batch, Error>?
  }

  init(dataset: Dataset, chunks: [[Int]]) {
    self.dataset = dataset
    self.chunks = chunks
    schedule(0)
  }

  private func schedule(_ index: Int) {
    guard index < chunks.count else {
      pending = nil
      return
    }
    let group = DispatchGroup()
    let box = ResultBox()
    let chunk = chunks[index]
    let dataset = self.dataset
    queue.async(group: group) {
      Torch.useOneThreadOnThisThread()  // the training thread keeps the cores' OpenMP team to itself
      box.result = Result { try dataset.batch(at: chunk) }
    }
    pending = (group, box)
  }

  public func next() -> Batch? {
    guard let (group, box) = pending else { return nil }
    group.wait()
    position += 1
    schedule(position)
    switch box.result! {
    case .success(let batch): return batch
    case .failure(let failure):
      error = failure
      pending = nil
      return nil
    }
  }
}
