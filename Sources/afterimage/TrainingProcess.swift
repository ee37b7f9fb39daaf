import Afterimage
import ArgumentParser
import Foundation
import Torch

/// The options every training command shares: threads, a new run or a resumed one, the
/// TensorBoard log, batch-norm groups, the device and the data-parallel job.
struct TrainingProcessOptions: ParsableArguments {
  @Option(help: "Threads (default: all cores).") var threads: Int?
  @Flag(help: "Continue the run in --out from its checkpoint (its saved options are used).") var resume = false
  @Flag(help: "Replace a run already in --out (its weights, config, metrics and samples are deleted).") var force = false
  @Flag(help: "Write no TensorBoard log (events.out.tfevents.afterimage in --out, written by default).") var noTensorboard = false
  @Option(help: "Batch-norm statistics per group of batch/N examples: one process then trains as N data-parallel processes with per-rank statistics do.")
  var batchNormGroups = 1
  @OptionGroup var compute: DeviceOptions
  @OptionGroup(title: "Data-parallel training (torchrun's variables: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)")
  var distributed: DistributedOptions

  func validate() throws {
    try require(batchNormGroups >= 1, "--batch-norm-groups must be at least 1")
    try require(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
    try require(!(resume && force), "--resume continues the run in --out and --force replaces it: give one")
  }
}

/// This process's part in a training job: the only process, or one rank of a data-parallel job
/// (`DistributedOptions`), which trains on `device` with `group`; rank 0 writes `run`.
struct TrainingProcess {
  let device: Device
  let group: ProcessGroup?
  var run: RunDirectory
  let options: TrainingProcessOptions

  /// Whether this process writes the run's files and speaks for the job.
  var isWriter: Bool { (group?.rank ?? 0) == 0 }

  /// Sets up this process for training into `out`: the threads, the device (one this machine
  /// lacks is refused before any work) and the process group. Nil in the launcher of a
  /// data-parallel job, whose ranks have trained by the time it returns.
  init?(_ options: TrainingProcessOptions, out: String) throws {
    let role = try options.distributed.role()
    if case .launched = role { return nil }
    if let threads = options.threads { Torch.threadCount = threads }
    device = try role.device(try options.compute.resolved())
    group = try role.group(timeout: options.distributed.distributedTimeout)
    run = RunDirectory(out)
    run.writesTensorBoard = !options.noTensorboard
    self.options = options
  }

  /// Readies `run` for a new run (refusing to replace one without --force); only the writer touches it.
  func prepareNewRun() throws {
    if isWriter { try run.prepareNewRun(replacing: options.force) }
  }

  /// Checks that --batch-norm-groups divides each process's share of `batchSize`.
  func checkBatchNormGroups(batchSize: Int) throws -> Int {
    let perProcess = batchSize / (group?.worldSize ?? 1)
    try require(perProcess % options.batchNormGroups == 0, "--batch-norm-groups \(options.batchNormGroups) does not divide each process's batch of \(perProcess)")
    return options.batchNormGroups
  }

  /// Rank 0 speaks for the job: it prints the data-parallel split and `announcement`. Any other
  /// rank trains silently (`quiet` turns its trainer's progress and log off).
  func announce(_ announcement: @autoclosure () throws -> String, batchSize: Int, quiet: () -> Void) rethrows {
    guard isWriter else { return quiet() }
    if let group { print("data-parallel: \(group.worldSize) processes, \(batchSize / group.worldSize) images each per step (batch-norm statistics per process)") }
    print(try announcement())
  }

  /// Ends the process with status 130 when the run stopped before its last step (Ctrl-C); its
  /// checkpoint is saved for --resume.
  func requireFinished(_ finished: Bool) throws {
    guard finished else { throw ExitCode(130) }
  }
}
