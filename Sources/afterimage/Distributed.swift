import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `--nproc-per-node`, `--nnodes`, `--node-rank`, `--master-addr`, `--master-port`: how many
/// processes a command runs as, started the way `torchrun` starts a job.
struct DistributedOptions: ParsableArguments {
  @Option(help: "Processes on this machine (one per GPU; on a CPU, each gets cores / N threads).") var nprocPerNode = 1
  @Option(help: "Machines in the job.") var nnodes = 1
  @Option(help: "This machine's place among them (0 hosts the rendezvous).") var nodeRank = 0
  @Option(help: "The address of node 0, where rank 0 hosts the TCP store.") var masterAddr = "127.0.0.1"
  @Option(help: "The TCP store's port on node 0.") var masterPort = 29500
  @Option(help: "Seconds a rank waits for the others (to join, and at each collective) before it gives up.") var distributedTimeout = 300.0

  func validate() throws {
    try require(nprocPerNode >= 1 && nnodes >= 1, "--nproc-per-node and --nnodes must be at least 1")
    try require((0..<nnodes).contains(nodeRank), "--node-rank must be 0 to \(nnodes - 1)")
    try require((1...65_535).contains(masterPort), "--master-port must be 1 to 65535")
    try require(distributedTimeout > 0 && distributedTimeout.isFinite, "--distributed-timeout must be a positive number of seconds")
  }

  var worldSize: Int { nprocPerNode * nnodes }

  /// What this process is in the job. With `RANK`/`WORLD_SIZE` in the environment (a rank
  /// started by this launcher, by torchrun or by a scheduler), the rank it was given. Otherwise,
  /// for a job of several processes, this process is the launcher: it starts this node's ranks,
  /// waits for them and returns `.launched`. A single process returns `.single`.
  func role() throws -> DistributedRole {
    if let rendezvous = try Rendezvous.fromEnvironment() {
      Launcher.followLauncher()
      return .rank(rendezvous)
    }
    guard worldSize > 1 else { return .single }
    try Launcher(options: self).run()
    return .launched
  }
}

enum DistributedRole {
  /// One process, no group.
  case single
  /// One rank of a job.
  case rank(Rendezvous)
  /// This process started the ranks, which have finished.
  case launched

  /// The device a rank computes on: with `cuda`, the GPU of its local rank (`cuda:LOCAL_RANK`,
  /// one GPU per process on each machine); otherwise `device` as asked.
  func device(_ device: Device) throws -> Device {
    guard case .rank(let rendezvous) = self, case .cuda = device else { return device }
    guard rendezvous.localRank < Torch.cudaDeviceCount else {
      throw RunError("local rank \(rendezvous.localRank) has no GPU: this machine has \(Torch.cudaDeviceCount); start at most that many processes per node")
    }
    return .cuda(rendezvous.localRank)
  }

  /// Joins the job's process group (nil for a single process).
  func group(timeout: TimeInterval) throws -> ProcessGroup? {
    guard case .rank(let rendezvous) = self else { return nil }
    return try ProcessGroup(rendezvous, timeout: timeout)
  }
}

/// Starts this node's ranks as copies of this command with the `torchrun` variables set, and
/// takes the job down when one of them fails: the others get SIGTERM (then SIGKILL), and the
/// error names the rank and how it ended. Foundation starts each rank in its own process group,
/// so the launcher passes SIGINT, SIGTERM and SIGHUP on to every rank, and each rank asks the
/// kernel for SIGTERM should the launcher die (`Launcher.followLauncher`).
struct Launcher {
  let options: DistributedOptions

  /// Set in the ranks this launcher starts.
  static let launchedVariable = "AFTERIMAGE_LAUNCHED"

  /// In a rank this launcher started: SIGTERM when the launcher dies, so no rank outlives it.
  static func followLauncher() {
    guard ProcessInfo.processInfo.environment[launchedVariable] == "1" else { return }
    Rendezvous.stopWithParent()
  }

  final class Forwarded: @unchecked Sendable {
    var signal: Int32?
  }

  func run() throws {
    let executable = URL(fileURLWithPath: CommandLine.arguments[0].contains("/") ? CommandLine.arguments[0] : "/proc/self/exe").resolvingSymlinksInPath()
    let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / options.nprocPerNode)
    var ranks: [(rank: Int, process: Process)] = []
    let lock = NSLock()
    let forwarded = Forwarded()
    // Installed before any rank starts: a signal at any moment reaches every rank started so far.
    let forwarders = [SIGINT, SIGTERM, SIGHUP].map { number -> DispatchSourceSignal in
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        lock.lock()
        defer { lock.unlock() }
        forwarded.signal = number
        for (_, process) in ranks where process.isRunning { kill(process.processIdentifier, number) }
      }
      source.resume()
      return source
    }
    defer { forwarders.forEach { $0.cancel() } }
    for local in 0..<options.nprocPerNode {
      let rendezvous = Rendezvous(
        rank: options.nodeRank * options.nprocPerNode + local, worldSize: options.worldSize, localRank: local,
        masterAddress: options.masterAddr, masterPort: options.masterPort)
      let process = Process()
      process.executableURL = executable
      process.arguments = Array(CommandLine.arguments.dropFirst())
      var environment = ProcessInfo.processInfo.environment.merging(rendezvous.environment) { $1 }
      if environment["AFTERIMAGE_THREADS"] == nil { environment["AFTERIMAGE_THREADS"] = "\(threads)" }
      environment[Self.launchedVariable] = "1"
      process.environment = environment
      do {
        try process.run()
      } catch {
        lock.lock()
        for (_, started) in ranks where started.isRunning { kill(started.processIdentifier, SIGTERM) }
        lock.unlock()
        throw RunError("could not start rank \(rendezvous.rank) (\(executable.path)): \(error.localizedDescription); the ranks already started were stopped")
      }
      FileHandle.standardError.write(Data("launched rank \(rendezvous.rank) of \(options.worldSize) as process \(process.processIdentifier)\n".utf8))
      lock.lock()
      ranks.append((rendezvous.rank, process))
      lock.unlock()
    }
    // The first rank to end badly takes the job down; the others are stopped. After a forwarded
    // signal, ranks that it ended (before their own handler was installed, or at once on a
    // second signal: status 128 + the signal) count as interrupted.
    var failure: String?
    func failed(_ process: Process) -> Bool {
      !process.isRunning && !endedWell(process) && !interrupted(process) && !(forwarded.signal != nil && endedBySignal(process))
    }
    while ranks.contains(where: { $0.process.isRunning }) {
      for (rank, process) in ranks where failure == nil && failed(process) {
        failure = "rank \(rank) \(describe(process))"
        let others = ranks.map(\.process).filter(\.isRunning)
        for other in others { kill(other.processIdentifier, SIGTERM) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 10) {
          for other in others where other.isRunning { kill(other.processIdentifier, SIGKILL) }
        }
      }
      usleep(50_000)
    }
    if failure == nil, let (rank, process) = ranks.first(where: { failed($0.process) }) { failure = "rank \(rank) \(describe(process))" }
    if let failure { throw RunError("the job stopped: \(failure); the other ranks were stopped") }
    // Ctrl-C: the ranks agreed on a step, checkpointed and stopped with status 130.
    if forwarded.signal != nil || ranks.contains(where: { interrupted($0.process) }) { throw ExitCode(130) }
  }

  private func endedWell(_ process: Process) -> Bool { process.terminationReason == .exit && process.terminationStatus == 0 }
  private func interrupted(_ process: Process) -> Bool { process.terminationReason == .exit && process.terminationStatus == 130 }
  private func endedBySignal(_ process: Process) -> Bool {
    let stopSignals = [SIGINT, SIGTERM, SIGHUP]
    switch process.terminationReason {
    case .uncaughtSignal: return stopSignals.contains(process.terminationStatus)
    default: return stopSignals.map { 128 + $0 }.contains(process.terminationStatus)
    }
  }

  private func describe(_ process: Process) -> String {
    switch process.terminationReason {
    case .uncaughtSignal: return "was killed by signal \(process.terminationStatus)"
    default: return "exited with status \(process.terminationStatus) (its error is above)"
    }
  }
}

/// `afterimage distributed …`: the distributed layer, on its own.
struct DistributedCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "distributed", abstract: "Check that processes (and machines) can form a job: c10d over Gloo, as torch.distributed.",
    subcommands: [DistributedCheck.self])
}

struct DistributedCheck: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Start N processes (or join a job torchrun-style), run all-reduce, broadcast and barrier, and check every result.")

  @OptionGroup var distributed: DistributedOptions
  @Option(help: "Elements per tensor.") var elements = 1_000_000

  func run() throws {
    let role = try distributed.role()
    guard let group = try role.group(timeout: distributed.distributedTimeout) else {
      if case .single = role { print("one process: nothing to check (give --nproc-per-node 2 or more)") }
      return
    }
    let (rank, size) = (group.rank, group.worldSize)
    var checks: [(String, Bool, Double)] = []
    func timed(_ name: String, _ body: () throws -> Bool) throws {
      let start = Date()
      let passed = try body()
      checks.append((name, passed, Date().timeIntervalSince(start) * 1000))
    }
    // Rank r holds r + 1 everywhere: the sum is N(N+1)/2, the mean (N+1)/2.
    try timed("all-reduce (sum)") {
      let values = Tensor.full([elements], Double(rank + 1))
      try group.allReduce([values], .sum)
      return values.equals(Tensor.full([elements], Double(size * (size + 1) / 2)))
    }
    try timed("all-reduce (mean)") {
      let values = Tensor.full([elements], Double(rank + 1))
      try group.allReduce([values], .mean)
      return values.allClose(Tensor.full([elements], Double(size + 1) / 2), atol: 1e-6)
    }
    try timed("broadcast from rank 0") {
      let values = Tensor.arange(0, Double(elements), dtype: .float32) * Double(rank + 1)
      try group.broadcast([values], from: 0)
      return values.equals(Tensor.arange(0, Double(elements), dtype: .float32))
    }
    try timed("barrier") {
      try group.barrier()
      return true
    }
    // Every rank's verdicts, summed: a check passes only where it passed on all ranks.
    let verdicts = Tensor(checks.map { $0.1 ? Float(1) : 0 })
    try group.allReduce([verdicts], .sum)
    let passedEverywhere = verdicts.scalars(as: Float.self).map { Int($0) == size }
    if rank == 0 {
      print("\(size) processes, \(elements) float32 per tensor (c10d, Gloo over TCP):")
      for ((name, _, milliseconds), passed) in zip(checks, passedEverywhere) {
        print(String(format: "  %@ %@ (%.1f ms on rank 0)", passed ? "ok  " : "FAIL", name, milliseconds))
      }
    }
    guard passedEverywhere.allSatisfy({ $0 }) else { throw ExitCode(1) }
  }
}
