import Foundation
import Torch

/// What a trainer brings to `TrainingLoop`: its run folder, its data, its step, and what it does
/// around the step. The loop owns the rest: resuming mid-epoch, throughput, metrics, the progress
/// bar, Ctrl-C agreed across ranks, the last checkpoint and results.json.
public protocol TrainingTask: AnyObject {
  associatedtype Results: Encodable
  var run: RunDirectory { get }
  /// The job's process group in a data-parallel run; rank 0 writes.
  var group: ProcessGroup? { get }
  var loader: DataLoader { get }
  /// Steps in the whole run, and those done.
  var totalSteps: Int { get }
  var step: Int { get }
  var log: ((String) -> Void)? { get }
  var showProgress: Bool { get }
  /// The progress bar's label: `train`, `invert`.
  var progressLabel: String { get }

  associatedtype Config: Encodable
  /// What config.json records.
  var config: Config { get }
  /// The weights being trained: every rank's must agree before the first step.
  var trainedParameters: [Tensor] { get }
  /// Restores the networks, optimisers, random generators and step from the run's checkpoint.
  func restoreCheckpoint() throws
  /// One step on `batch`, which advances `step`.
  func trainStep(_ batch: Batch) throws -> TrainingStepReport
  /// After each step, on the writer: the checkpoints, samples and snapshots that are due.
  func afterStep() throws
  /// After the last step of each epoch, on every rank (the task decides who evaluates).
  func endOfEpoch() throws
  /// When the loop stops, on the writer: the checkpoint, and when `finished` the model.
  func save(finished: Bool) throws
  /// results.json of a finished run, on the writer.
  func results(_ summary: TrainingSummary) throws -> Results
}

/// One step's numbers: the images the whole job trained on (every rank's), what metrics.jsonl
/// logs (nil: not a logged step) and what the progress line shows.
public struct TrainingStepReport {
  public var images: Int
  public var metrics: [String: Double]?
  public var progress: KeyValuePairs<String, String>
  public init(images: Int, metrics: [String: Double]?, progress: KeyValuePairs<String, String>) {
    self.images = images
    self.metrics = metrics
    self.progress = progress
  }
}

/// What one `TrainingLoop.fit` did.
public struct TrainingSummary: Equatable, Sendable {
  /// The step the run stands at, and how many of those steps this call ran (fewer on resume).
  public var steps: Int
  public var stepsThisRun: Int
  /// Wall-clock seconds of this call.
  public var seconds: Double
  /// Whether the run reached its last step (else it stopped early: Ctrl-C or `stopAfter`).
  public var finished: Bool
}

/// The training loop every trainer runs, top to bottom.
public enum TrainingLoop {
  /// Trains `task` to its last step, or to step `stopAfter`, or to a Ctrl-C on any rank (both
  /// leave a checkpoint to resume from). On the writer, a finished run's results go to
  /// results.json. Returns what was done and, for a finished run on the writer, the results.
  public static func fit<Task: TrainingTask>(_ task: Task, resume: Bool, stopAfter: Int? = nil) throws -> (TrainingSummary, Task.Results?) {
    let start = Date()
    let isWriter = (task.group?.rank ?? 0) == 0
    // The run folder and config.json; on resume the checkpoint, with the metrics logged after it
    // dropped; the Ctrl-C handler.
    let resumed = try task.run.beginTraining(config: task.config, resume: resume, writer: isWriter) {
      try task.restoreCheckpoint()
      return task.step
    }
    if let resumed { task.log?("resuming \(task.run.url.path) at step \(resumed) of \(task.totalSteps)") }
    defer { Interruption.uninstall() }
    // A node with a stale copy of the run, or ranks given different seeds, stop here.
    if let group = task.group {
      let checksum = withNoGrad { task.trainedParameters.map { $0.to(.float64).sum().item() }.reduce(0, +) }
      try group.checkSameOnEveryRank([Double(task.step), checksum], "step and weights")
    }
    let firstStep = task.step
    let perEpoch = task.loader.batchCount
    let progress = ProgressBar(total: task.totalSteps, label: task.progressLabel, unit: "img", startingAt: task.step)
    var images = 0
    var throughput = Throughput()
    training: while task.step < task.totalSteps {
      // A resumed run starts mid-epoch, at the batch it stopped before, in the same order.
      let batches = task.loader.epoch(task.step / perEpoch, startingAt: task.step % perEpoch).makeIterator()
      while let batch = batches.next() {
        let report = try task.trainStep(batch)
        images += report.images
        throughput.add(report.images)
        if isWriter, var metrics = report.metrics {
          metrics["images_per_second"] = throughput.take()
          try task.run.appendMetrics(metrics, step: task.step)
        }
        if task.showProgress { progress.update(task.step, items: images, metrics: report.progress) }
        if isWriter { try task.afterStep() }
        // Every rank stops at the same step: a Ctrl-C seen by any of them stops them all.
        if try task.group?.anyRank(Interruption.requested) ?? Interruption.requested || task.step == stopAfter { break training }
        if task.step % perEpoch == 0 || task.step == task.totalSteps { break }  // the next epoch reshuffles
      }
      if let error = batches.error { throw error }
      if task.step % perEpoch == 0 { try task.endOfEpoch() }
    }
    let finished = task.step >= task.totalSteps
    if isWriter { try task.save(finished: finished) }
    let summary = TrainingSummary(steps: task.step, stepsThisRun: task.step - firstStep, seconds: Date().timeIntervalSince(start), finished: finished)
    guard finished else {
      task.log?("stopped at step \(task.step); checkpoint saved. Continue with --resume.")
      return (summary, nil)
    }
    guard isWriter else { return (summary, nil) }
    let results = try task.results(summary)
    try task.run.writeJSON(results, to: task.run.resultsURL)
    return (summary, results)
  }
}
