import Foundation
import Torch

/// Trains a classifier into a run directory: SGD with Nesterov momentum, weight decay, warm-up
/// then cosine decay, augmentation, optional label smoothing and PGD adversarial training;
/// atomic checkpoints every N steps and on Ctrl-C; `resume` continues exactly where it stopped.
///
/// `init` sets up the network and optimiser (`ClassifierState`), the loader and the schedule;
/// `fit` is the loop; each `trainingStep` is a batch → augmentation → (PGD) → one SGD step.
public final class ClassifierTrainer {
  public let run: RunDirectory
  /// The run's config, which records `options` as its `training`.
  public let config: ClassifierConfig
  public let options: ClassifierTrainingOptions
  let train: Dataset
  let test: Dataset
  public let state: ClassifierState
  public let loader: DataLoader
  let schedule: LinearWarmup<CosineSchedule>
  /// Where the network, batches and losses live (`--device`); augmentation and attack noise are
  /// drawn on the CPU and moved, so a seed gives the same draws on every device.
  public let device: Device
  /// Test images attacked with the final PGD in results.json (robust models; `--final-attack-count`).
  public var finalAttackCount = ClassifierTrainingResults.defaultFinalAttackCount
  /// The training accuracy since the last epoch's end.
  var accuracy = RunningAccuracy()
  /// Where progress lines go (standard error by default); set to nil for silence in tests.
  public var log: ((String) -> Void)? = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
  public var showProgress = true
  /// The job's process group when this is one rank of a data-parallel run (see `init`).
  public let group: ProcessGroup?
  /// Whether this process writes the run's files: the only one, or rank 0.
  public var isWriter: Bool { (group?.rank ?? 0) == 0 }

  /// SGD steps done.
  public var step: Int { state.step }
  var classifier: NetworkClassifier { state.classifier }

  /// Prepares a run; `config` describes the network (its classes and input come from `train`).
  ///
  /// With `group`, this is one rank of a data-parallel run: every rank loads and augments the
  /// whole batch (so the draws are those of one process) and trains on its slice; PGD's random
  /// start is its slice of the whole batch's; gradients are averaged over the ranks before each
  /// step, the loss and Ctrl-C are agreed, and rank 0 alone writes and evaluates. Batch norm
  /// normalises with each rank's own batch statistics; the running statistics are averaged over
  /// the ranks after every step.
  public init(
    run: RunDirectory, config: ClassifierConfig, options: ClassifierTrainingOptions, train: Dataset, test: Dataset,
    device: Device = .cpu, group: ProcessGroup? = nil
  ) throws {
    self.group = group
    if let group, options.batchSize % group.worldSize != 0 {
      throw RunError("a batch of \(options.batchSize) does not split evenly over \(group.worldSize) processes: choose a --batch-size divisible by \(group.worldSize)")
    }
    try device.checkAvailable()
    self.device = device
    guard train.classCount == config.classCount, train.channels == config.channels, train.resolution == config.resolution else {
      throw RunError("the classifier expects \(config.channels)×\(config.resolution)² images in \(config.classCount) classes; the data set has \(train.channels)×\(train.resolution)² in \(train.classCount)")
    }
    try checkClassNames(config.classNames, against: test)
    self.run = run
    var config = config
    config.training = options  // config.json records how the weights were made
    self.config = config
    self.options = options
    self.train = try options.trainCount.map { try Subset(train, count: $0) } ?? train
    self.test = test
    state = try ClassifierState(config: config, options: options, device: device)
    loader = DataLoader(self.train, batchSize: options.batchSize, shuffle: true, dropLast: true, seed: options.seed)
    guard loader.batchCount > 0 else {
      throw RunError("the training set has \(self.train.count) examples, fewer than one batch of \(options.batchSize)")
    }
    let total = options.epochs * loader.batchCount
    schedule = LinearWarmup(CosineSchedule(base: options.learningRate, totalSteps: total), warmupSteps: min(options.warmupSteps, total / 10))
  }

  public var totalSteps: Int { options.epochs * loader.batchCount }

  // MARK: the loop (`TrainingLoop`)

  /// Trains until `options.epochs` are done, Ctrl-C, or step `stopAfter` (which, like Ctrl-C,
  /// leaves a checkpoint to resume from) with `TrainingLoop`. A finished run is evaluated on the
  /// test set (and, when trained adversarially, under the final attack) into results.json.
  @discardableResult
  public func fit(resume: Bool, stopAfter: Int? = nil) throws -> ClassifierTrainingSummary {
    accuracy = RunningAccuracy()
    let (summary, results) = try TrainingLoop.fit(self, resume: resume, stopAfter: stopAfter)
    return ClassifierTrainingSummary(
      steps: summary.steps, seconds: summary.seconds, trainAccuracy: accuracy.value, evaluation: results?.evaluation, interrupted: !summary.finished)
  }

  /// The test accuracy at the end of an epoch (on `options.evaluationCount` images), logged.
  func evaluateEpoch() throws {
    let epoch = step / loader.batchCount
    let accuracy = try ClassifierEvaluation.evaluate(classifier, on: test, limit: options.evaluationCount).cleanAccuracy
    try run.appendMetrics(["test_accuracy": accuracy, "epoch": Double(epoch)], step: step)
    log?(String(format: "epoch %d: test accuracy %.2f%%", epoch, 100 * accuracy))
  }

  // MARK: one step

  /// One SGD step on `batch` (replaced by its PGD examples in adversarial training); returns the
  /// loss and the number of correct predictions.
  public func trainingStep(_ batch: Batch) throws -> (loss: Double, correct: Double) {
    var labels = batch.labels.to(device)
    var images = options.augmentation(batch.images.to(device), generator: state.augmentGenerator).channelsLast()  // [B, C, H, W]
    var start: Tensor?
    if let attack = options.adversarial, attack.randomStart, group != nil {
      start = Attacks.randomPoint(in: attack, like: images, generator: state.attackGenerator)  // the whole batch's draw
    }
    if let group {  // this rank's slice: [B/N, …]
      let size = images.shape[0] / group.worldSize
      func slice(_ x: Tensor) -> Tensor { x.narrow(dim: 0, start: group.rank * size, length: size) }
      (images, labels, start) = (slice(images).contiguous().channelsLast(), slice(labels), start.map(slice))
    }
    if let attack = options.adversarial {
      images = try Attacks.perturb(images, labels: labels, classifier: classifier, spec: attack, generator: state.attackGenerator, start: start)
    }
    classifier.train(true)
    let logits = options.forwardPrecision.run(on: device) { classifier.logits(images) }.to(.float32)  // [B, K]
    let loss = Loss.crossEntropy(logits, labels, labelSmoothing: options.labelSmoothing)
    state.optimizer.zeroGrad()
    loss.backward()
    try group?.averageGradients(of: classifier.model.parameters)
    state.optimizer.step()
    try group?.averageBuffers(of: classifier.model)  // running statistics: every rank attacks the same model
    var value = loss.item()
    var correct = withNoGrad { (logits.argmax(dim: 1) .== labels).to(.float32).sum().item() }
    if let group {  // the whole batch's loss and hits, on every rank
      let agreed = try group.mean([value, correct])
      (value, correct) = (agreed[0], agreed[1] * Double(group.worldSize))
    }
    // Cross-entropy starts near ln K (2.3 for 10 classes); a thousand means the logits blew up.
    guard value.isFinite, value < Self.divergedLoss else {
      throw RunError("training diverged: the loss became \(value) at step \(step + 1); \(run.whatIsKept(kind: "classifier"))")
    }
    return (value, correct)
  }
}

extension ClassifierTrainer: TrainingTask {
  public var progressLabel: String { "train" }

  public var trainedParameters: [Tensor] { classifier.model.parameters }
  public func restoreCheckpoint() throws { try state.loadCheckpoint(from: run) }

  /// One SGD step at the schedule's rate; every 25th (and the last) is logged.
  public func trainStep(_ batch: Batch) throws -> TrainingStepReport {
    let epoch = step / loader.batchCount
    state.optimizer.learningRate = schedule.learningRate(at: step)
    let (loss, hits) = try trainingStep(batch)
    state.step += 1
    accuracy.add(correct: hits, of: batch.labels.count)
    let logged = step % 25 == 0 || step == totalSteps
    // Every rank loads the whole batch and trains on its slice.
    return TrainingStepReport(
      images: batch.labels.count,
      metrics: logged ? ["loss": loss, "train_accuracy": accuracy.correct / accuracy.seen, "lr": state.optimizer.learningRate] : nil,
      progress: ["epoch": "\(epoch + 1)/\(options.epochs)", "loss": String(format: "%.3f", loss), "acc": String(format: "%.1f%%", 100 * accuracy.value)])
  }

  public func afterStep() throws {
    if step % options.checkpointEvery == 0 { try state.saveCheckpoint(to: run, config: config) }
  }

  public func endOfEpoch() throws {
    if isWriter { try evaluateEpoch() }
    accuracy = RunningAccuracy()
  }

  public func save(finished: Bool) throws {
    try state.saveCheckpoint(to: run, config: config)
    guard finished else { return }
    classifier.train(false)
    try Classifiers.save(classifier, to: run)
  }

  /// The test accuracy (and under the final attack, `finalAttackCount` images) of the trained model.
  public func results(_ summary: TrainingSummary) throws -> ClassifierTrainingResults {
    let evaluation = try ClassifierTrainingResults.evaluate(classifier, on: test, training: options, attackCount: finalAttackCount, progress: showProgress)
    return ClassifierTrainingResults(evaluation: evaluation, seconds: summary.seconds, steps: summary.steps)
  }
}

extension ClassifierTrainer {
  /// A cross-entropy this large means training diverged.
  static let divergedLoss = 1e3
}

/// The training accuracy since the last epoch's end.
struct RunningAccuracy {
  var correct = 0.0
  var seen = 0.0
  mutating func add(correct hits: Double, of count: Int) {
    correct += hits
    seen += Double(count)
  }
  /// The fraction correct (0 before any batch).
  var value: Double { correct / max(seen, 1) }
}
