import Foundation

/// What one `InverterTrainer.fit` did.
public struct InverterTrainingSummary: Equatable, Sendable {
  /// The step the run stands at, and how many of those steps this call ran (fewer on resume).
  public var steps: Int
  public var stepsThisRun: Int
  /// Wall-clock seconds of this call.
  public var seconds: Double
  /// Whether the run reached its last step (else it stopped early: Ctrl-C or `stopAfter`).
  public var finished: Bool

  public init(steps: Int, stepsThisRun: Int, seconds: Double, finished: Bool) {
    self.steps = steps
    self.stepsThisRun = stepsThisRun
    self.seconds = seconds
    self.finished = finished
  }
}

/// results.json of an inverter run: how long the invocation that finished it took.
public struct InverterTrainingResults: VersionedRecord, Equatable {
  public static let currentSchemaVersion = 1

  public private(set) var schemaVersion = currentSchemaVersion
  public var seconds: Double
  /// The run's steps, and those this invocation ran (a resumed run counts only its own).
  public var steps: Int
  public var stepsThisRun: Int
  public var threads: Int
  /// Training images per second of this invocation (nil in a record written by hand from a log).
  public var imagesPerSecond: Double?
  /// A remark on how the record was made, when it was not by `inverter train`.
  public var note: String?

  /// The record of `summary`, trained with `threads` threads on batches of `batchSize`.
  public init(summary: InverterTrainingSummary, threads: Int, batchSize: Int) {
    seconds = summary.seconds
    steps = summary.steps
    stepsThisRun = summary.stepsThisRun
    self.threads = threads
    imagesPerSecond = Double(summary.stepsThisRun * batchSize) / max(summary.seconds, 1e-9)
  }

  enum CodingKeys: String, CodingKey {
    case schemaVersion, seconds, steps, threads, note
    case stepsThisRun = "steps_this_run", imagesPerSecond = "images_per_second"
  }

  /// Reads a record of any schema up to the current one. A record from before `steps_this_run`
  /// was written counts every step as this invocation's.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.checkSchemaVersion(.schemaVersion, of: Self.self)
    seconds = try c.decode(Double.self, forKey: .seconds)
    steps = try c.decode(Int.self, forKey: .steps)
    stepsThisRun = try c.decodeIfPresent(Int.self, forKey: .stepsThisRun) ?? steps
    threads = try c.decode(Int.self, forKey: .threads)
    imagesPerSecond = try c.decodeIfPresent(Double.self, forKey: .imagesPerSecond)
    note = try c.decodeIfPresent(String.self, forKey: .note)
  }
}

/// results.json of a classifier run: the evaluation on the test set after training (clean, and
/// under the final attack for adversarially trained models) and how long training took.
public struct ClassifierTrainingResults: VersionedRecord {
  public static let currentSchemaVersion = 1

  /// Test images attacked with the final PGD at the end of adversarial training (`--final-attack-count`).
  public static let defaultFinalAttackCount = 1000

  public private(set) var schemaVersion = currentSchemaVersion
  public var evaluation: ClassifierEvaluation.Result
  public var seconds: Double
  public var steps: Int

  public init(evaluation: ClassifierEvaluation.Result, seconds: Double, steps: Int) {
    self.evaluation = evaluation
    self.seconds = seconds
    self.steps = steps
  }

  enum CodingKeys: String, CodingKey { case schemaVersion, evaluation, seconds, steps }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    try c.checkSchemaVersion(.schemaVersion, of: Self.self)
    evaluation = try c.decode(ClassifierEvaluation.Result.self, forKey: .evaluation)
    seconds = try c.decode(Double.self, forKey: .seconds)
    steps = try c.decode(Int.self, forKey: .steps)
  }

  /// Evaluates a trained classifier on `test`: clean accuracy on every image, and for a model
  /// trained against `training.adversarial`, accuracy under `AttackSpec.finalEvaluation` of it on
  /// the first `attackCount` images.
  public static func evaluate(
    _ classifier: any ImageClassifier, on test: Dataset, training: ClassifierTrainingOptions, attackCount: Int = defaultFinalAttackCount,
    progress: Bool = false
  ) throws -> ClassifierEvaluation.Result {
    var results = try ClassifierEvaluation.evaluate(classifier, on: test, progress: progress)
    if let attack = training.adversarial {
      let final = AttackSpec.finalEvaluation(of: attack)
      let attacked = try ClassifierEvaluation.evaluate(classifier, on: test, attack: final, limit: attackCount, progress: progress)
      results.attackAccuracy = attacked.attackAccuracy
      results.attack = "\(final.description) on the first \(attacked.count) test images"
    }
    return results
  }
}

extension ClassifierTrainingResults {
  /// The results.json of the classifier run at `path`, as its training wrote it.
  public static func read(ofRun path: String) throws -> ClassifierTrainingResults {
    try JSONFiles.read(ClassifierTrainingResults.self, from: RunDirectory(path).resultsURL)
  }

  /// The clean test accuracy the classifier run at `path` recorded when it was trained; nil when
  /// it has no readable results.json (an imported model, a run that never finished).
  public static func recordedAccuracy(of path: String) -> Double? {
    (try? read(ofRun: path))?.evaluation.cleanAccuracy
  }
}
