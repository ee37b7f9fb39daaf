import CTorch
import Foundation

// MARK: - Rendezvous

/// Where the processes of a job meet and which one this is, in the variables `torchrun` sets,
/// so a job can be started by `afterimage … --nproc-per-node N`, by `torchrun`-style tooling or
/// by a cluster scheduler alike.
public struct Rendezvous: Equatable, Sendable {
  /// This process's place in the job, 0 ≤ rank < worldSize (`RANK`).
  public var rank: Int
  /// Processes in the job (`WORLD_SIZE`).
  public var worldSize: Int
  /// This process's place among those on its machine (`LOCAL_RANK`; the CUDA device it uses).
  public var localRank: Int
  /// The machine that hosts the TCP store, rank 0's (`MASTER_ADDR`).
  public var masterAddress: String
  /// The store's port (`MASTER_PORT`).
  public var masterPort: Int

  public init(rank: Int, worldSize: Int, localRank: Int? = nil, masterAddress: String = "127.0.0.1", masterPort: Int = 29500) {
    self.rank = rank
    self.worldSize = worldSize
    self.localRank = localRank ?? rank
    self.masterAddress = masterAddress
    self.masterPort = masterPort
  }

  /// The names `torchrun` uses.
  public enum Variable {
    public static let rank = "RANK", worldSize = "WORLD_SIZE", localRank = "LOCAL_RANK"
    public static let masterAddress = "MASTER_ADDR", masterPort = "MASTER_PORT"
  }

  /// The job this process belongs to, from the environment; nil without `WORLD_SIZE` (a single
  /// process). A partial or malformed set is an error that names the variable.
  public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Rendezvous? {
    guard let sizeText = environment[Variable.worldSize] else { return nil }
    func integer(_ name: String, _ text: String?, _ range: ClosedRange<Int>) throws -> Int {
      guard let text else { throw DistributedError("\(name) is not set but WORLD_SIZE is (\(sizeText)): set all of RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, as torchrun does") }
      guard let value = Int(text), range.contains(value) else { throw DistributedError("\(name)=\(text) is not a whole number in \(range.lowerBound)…\(range.upperBound)") }
      return value
    }
    let worldSize = try integer(Variable.worldSize, sizeText, 1...65_536)
    let rank = try integer(Variable.rank, environment[Variable.rank], 0...(worldSize - 1))
    let localRank = try environment[Variable.localRank].map { try integer(Variable.localRank, $0, 0...(worldSize - 1)) } ?? rank
    guard let address = environment[Variable.masterAddress], !address.isEmpty else {
      throw DistributedError("MASTER_ADDR is not set but WORLD_SIZE is (\(sizeText)): set it to rank 0's host name or address")
    }
    let port = try integer(Variable.masterPort, environment[Variable.masterPort], 1...65_535)
    return Rendezvous(rank: rank, worldSize: worldSize, localRank: localRank, masterAddress: address, masterPort: port)
  }

  /// The variables that make a child process this rank (what a launcher sets).
  public var environment: [String: String] {
    [Variable.rank: "\(rank)", Variable.worldSize: "\(worldSize)", Variable.localRank: "\(localRank)",
     Variable.masterAddress: masterAddress, Variable.masterPort: "\(masterPort)"]
  }
}

extension Rendezvous {
  /// Makes this process receive SIGTERM when the process that started it dies (a launcher's
  /// ranks must not outlive it).
  public static func stopWithParent() {
    _ = ct_signal_on_parent_death(SIGTERM)
  }
}

/// A failure of the distributed layer: a rendezvous that did not happen, a collective that
/// failed or timed out; the message names the rank and the operation.
public struct DistributedError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

// MARK: - Process group

/// How `allReduce` combines the ranks' tensors.
public enum ReduceOperation: Int32, Sendable {
  case sum = 0
  /// The sum divided by the world size.
  case mean = 1
}

/// A c10d process group (libtorch's TCPStore and Gloo backend, as `torch.distributed` with
/// `backend="gloo"`): collectives over CPU tensors between the processes of a job.
///
///     let group = try ProcessGroup(rendezvous)          // every rank, at about the same time
///     try group.allReduce([gradient], .mean)            // in place, on every rank
///
/// Every rank must call the same collectives in the same order. A rank that dies makes the
/// others' next collective fail (or time out) with a `DistributedError` instead of hanging.
public final class ProcessGroup {
  public let rendezvous: Rendezvous
  /// How long connecting and each collective may take.
  public let timeout: TimeInterval
  private let handle: ct_process_group

  public var rank: Int { rendezvous.rank }
  public var worldSize: Int { rendezvous.worldSize }

  /// Joins the job: rank 0 hosts the TCP store at `masterAddress:masterPort` and every rank
  /// waits (up to `timeout` seconds) for all of them to arrive.
  public init(_ rendezvous: Rendezvous, timeout: TimeInterval = 300) throws {
    Torch.ensureInitialised()
    self.rendezvous = rendezvous
    self.timeout = timeout
    ct_clear_error()
    guard let handle = ct_dist_init(
      rendezvous.masterAddress, Int32(rendezvous.masterPort), Int32(rendezvous.rank), Int32(rendezvous.worldSize),
      Int64(timeout * 1000))
    else {
      let reason = ct_last_error().map { String(cString: $0) } ?? "unknown failure"
      ct_clear_error()
      throw DistributedError(
        "rank \(rendezvous.rank) of \(rendezvous.worldSize) could not join the job at \(rendezvous.masterAddress):\(rendezvous.masterPort) within \(Int(timeout)) s: \(Self.firstLine(reason))")
    }
    self.handle = handle
  }

  deinit { ct_dist_free(handle) }

  /// Replaces each tensor, on every rank, by the sum or mean of that tensor over the ranks.
  public func allReduce(_ tensors: [Tensor], _ operation: ReduceOperation = .sum) throws {
    try run("all-reduce of \(tensors.count) tensor(s)") {
      withHandles(tensors) { ct_dist_all_reduce(handle, $0, $1, operation.rawValue) }
    }
  }

  /// Replaces each tensor, on every rank, by rank `root`'s.
  public func broadcast(_ tensors: [Tensor], from root: Int = 0) throws {
    try run("broadcast of \(tensors.count) tensor(s) from rank \(root)") {
      withHandles(tensors) { ct_dist_broadcast(handle, $0, $1, Int32(root)) }
    }
  }

  /// Returns once every rank has called it.
  public func barrier() throws {
    try run("barrier") { ct_dist_barrier(handle) }
  }

  private func withHandles(_ tensors: [Tensor], _ body: (UnsafePointer<ct_tensor?>?, Int32) -> Int32) -> Int32 {
    let handles: [ct_tensor?] = tensors.map { $0.handle }
    return handles.withUnsafeBufferPointer { body($0.baseAddress, Int32($0.count)) }
  }

  private func run(_ operation: String, _ call: () -> Int32) throws {
    ct_clear_error()
    guard call() == 0 else {
      let reason = ct_last_error().map { String(cString: $0) } ?? "unknown failure"
      ct_clear_error()
      throw DistributedError(
        "rank \(rank) of \(worldSize): the \(operation) failed (\(Self.firstLine(reason))). Another rank has probably stopped: its own error says why")
    }
  }

  /// libtorch's message without its C++ backtrace.
  static func firstLine(_ message: String) -> String {
    let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    return lines.first { !$0.isEmpty && !$0.hasPrefix("Exception raised from") && !$0.hasPrefix("frame #") } ?? message
  }
}

// MARK: - Gradients

extension ProcessGroup {
  /// Averages the gradients of `parameters` over the ranks, in buckets of about `bucketBytes`
  /// (as PyTorch's DistributedDataParallel, 25 MB by default): each bucket's gradients are
  /// flattened into one tensor, all-reduced, and copied back. Parameters without a gradient are
  /// skipped; which ones have one depends on the graph, not on the data, so it is the same on
  /// every rank.
  public func averageGradients(of parameters: [Tensor], bucketBytes: Int = 25 << 20) throws {
    guard worldSize > 1 else { return }
    var bucket: [Tensor] = []
    var bytes = 0
    func flush() throws {
      guard !bucket.isEmpty else { return }
      let gradients = bucket
      let flat = withNoGrad { Tensor.cat(gradients.map { $0.contiguous().flattened() }) }  // [Σ numel]
      try allReduce([flat], .mean)
      withNoGrad {
        var offset = 0
        for gradient in gradients {
          gradient.copy(from: flat.narrow(dim: 0, start: offset, length: gradient.count).reshaped(gradient.shape))
          offset += gradient.count
        }
      }
      bucket.removeAll()
      bytes = 0
    }
    for parameter in parameters {
      guard let gradient = parameter.grad else { continue }
      bucket.append(gradient)
      bytes += gradient.count * gradient.dtype.byteCount
      if bytes >= bucketBytes { try flush() }
    }
    try flush()
  }

  /// Replaces each floating-point buffer of `module` (batch norm's running statistics) by its
  /// mean over the ranks, so every rank evaluates (PGD's attack, samples, the saved model) with
  /// the same statistics; counters such as `num_batches_tracked` agree already.
  public func averageBuffers(of module: Module) throws {
    guard worldSize > 1 else { return }
    let buffers = module.namedBuffers().map(\.tensor).filter { $0.dtype.isFloatingPoint }
    guard !buffers.isEmpty else { return }
    let flat = withNoGrad { Tensor.cat(buffers.map { $0.contiguous().flattened().to(.float32) }) }  // one collective
    try allReduce([flat], .mean)
    withNoGrad {
      var offset = 0
      for buffer in buffers {
        buffer.copy(from: flat.narrow(dim: 0, start: offset, length: buffer.count).reshaped(buffer.shape).to(buffer.dtype))
        offset += buffer.count
      }
    }
  }

  /// Whether `flag` is true on any rank (every rank gets the same answer): how the ranks agree
  /// to stop at the same step when one of them sees Ctrl-C.
  public func anyRank(_ flag: Bool) throws -> Bool {
    guard worldSize > 1 else { return flag }
    let votes = Tensor([Float(flag ? 1 : 0)])
    try allReduce([votes], .sum)
    return votes.item() > 0
  }

  /// Throws unless `values` are the same on every rank (compared through their mean and the
  /// mean of their squares): how the trainers check, before the first step, that every rank
  /// starts from the same step and weights (a node with another copy of the checkpoint would
  /// otherwise train a replica that disagrees, or stop at another step and hang the job).
  public func checkSameOnEveryRank(_ values: [Double], _ what: String) throws {
    guard worldSize > 1, !values.isEmpty else { return }
    let means = try mean(values + values.map { $0 * $0 })
    for index in values.indices {
      let (mean, square) = (means[index], means[values.count + index])
      guard square - mean * mean <= 1e-9 * max(1, square) else {
        throw DistributedError("rank \(rank) of \(worldSize): the ranks do not start from the same \(what) (this rank has \(values[index]), the ranks' mean is \(mean)): give every node the same run directory, checkpoint included")
      }
    }
  }

  /// The mean of `values` over the ranks (the same on every rank), for losses and metrics.
  public func mean(_ values: [Double]) throws -> [Double] {
    guard worldSize > 1, !values.isEmpty else { return values }
    let tensor = Tensor(values, shape: [values.count])  // float64
    try allReduce([tensor], .mean)
    return tensor.scalars(as: Double.self)
  }
}
