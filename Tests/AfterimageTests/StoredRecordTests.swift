import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// config.json and results.json as later builds read them: versioned, and tolerant of files
/// written before a field existed.
final class StoredRecordTests: XCTestCase {
  let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// `value` as the JSON object a run directory stores.
  func jsonObject<T: Encodable>(_ value: T) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value)) as! [String: Any]
  }

  func decode<T: Decodable>(_ type: T.Type, from object: [String: Any]) throws -> T {
    try JSONDecoder().decode(type, from: try JSONSerialization.data(withJSONObject: object))
  }

  /// `object` without the keys at `paths` ("ch", "training.seed").
  func removing(_ paths: [String], from object: [String: Any]) -> [String: Any] {
    var object = object
    for path in paths {
      let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
      if parts.count == 1 {
        object[parts[0]] = nil
      } else if let inner = object[parts[0]] as? [String: Any] {
        object[parts[0]] = removing([parts[1]], from: inner)
      }
    }
    return object
  }

  /// Whether every value of `stored` is in `decoded` too (a re-encoded file keeps all it read).
  func assertContains(_ decoded: Any, _ stored: Any, at path: String = "", file: StaticString = #filePath, line: UInt = #line) {
    if let stored = stored as? [String: Any] {
      guard let decoded = decoded as? [String: Any] else { return XCTFail("\(path) is no longer an object", file: file, line: line) }
      for (key, value) in stored {
        guard let kept = decoded[key] else { XCTFail("\(path).\(key) was dropped", file: file, line: line); continue }
        assertContains(kept, value, at: "\(path).\(key)", file: file, line: line)
      }
    } else {
      XCTAssertEqual(decoded as? NSObject, stored as? NSObject, path, file: file, line: line)
    }
  }

  // MARK: every field away from its default

  func unusualInverterConfig() -> InverterConfig {
    var options = InverterTrainingOptions()
    options.steps = 7
    options.batchSize = 9
    options.generatorLearningRate = 2e-3
    options.discriminatorLearningRate = 3e-3
    options.beta1 = 0.5
    options.beta2 = 0.9
    options.discriminatorStepsPerGeneratorStep = 2
    options.emaDecay = 0.5
    options.emaStart = 3
    options.orthogonalRegularization = 1e-4
    options.sampleEvery = 11
    options.checkpointEvery = 13
    options.snapshotSteps = [2, 5]
    options.trainCount = 100
    options.seed = 42
    options.precision = .bf16
    var losses = InversionLossWeights.fidelity(layers: ["layer1"])
    losses.adversarial = 0.5
    losses.pixelL2 = 2
    losses.perceptualNetwork = "models/eval/shapes"
    var config = InverterConfig(
      resolution: 64, channels: 1, representationSize: 3, classifier: "c", dataset: "shapes", preset: "fidelity", losses: losses, training: options)
    config.architecture = .upconv
    config.ch = 8
    config.noiseSize = 32
    config.embeddingSize = 16
    config.attention = false
    config.preprocessing = .standardized
    config.seedInput = .noiseAndRepresentation
    config.representationMean = [1, 2, 3]
    config.representationStd = [4, 5, 6]
    config.command = "afterimage inverter train"
    return config
  }

  func unusualClassifierConfig() -> ClassifierConfig {
    var options = ClassifierTrainingOptions()
    options.epochs = 3
    options.batchSize = 5
    options.learningRate = 0.2
    options.momentum = 0.5
    options.weightDecay = 1e-3
    options.warmupSteps = 7
    options.labelSmoothing = 0.1
    options.cropPadding = 2
    options.horizontalFlip = false
    options.brightness = 0.1
    options.contrast = 0.2
    options.saturation = 0.3
    options.adversarial = AttackSpec(norm: .l2, epsilon: 0.5, steps: 3, stepSize: 0.2, randomStart: false, targeted: true)
    options.trainCount = 50
    options.evaluationCount = 20
    options.checkpointEvery = 9
    options.seed = 3
    options.precision = .bf16
    return ClassifierConfig(
      architecture: .evalnet, width: 0.5, channels: 3, resolution: 16, classNames: ["a", "b"],
      normalization: Normalization(mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6]), dataset: "shapes", torchscriptFile: "model.pt",
      training: options, command: "afterimage classifier train")
  }

  // MARK: the tests

  func testConfigsRoundTripAndRecordTheirSchema() throws {
    let inverter = unusualInverterConfig()
    XCTAssertEqual(try decode(InverterConfig.self, from: try jsonObject(inverter)), inverter)
    XCTAssertEqual(try jsonObject(inverter)["schemaVersion"] as? Int, InverterConfig.currentSchemaVersion)
    let classifier = unusualClassifierConfig()
    XCTAssertEqual(try decode(ClassifierConfig.self, from: try jsonObject(classifier)), classifier)
    XCTAssertEqual(try jsonObject(classifier)["schemaVersion"] as? Int, ClassifierConfig.currentSchemaVersion)
    let results = InverterTrainingResults(summary: InverterTrainingSummary(steps: 10, stepsThisRun: 4, seconds: 2, finished: true), threads: 2, batchSize: 8)
    XCTAssertEqual(try decode(InverterTrainingResults.self, from: try jsonObject(results)), results)
    XCTAssertEqual(results.imagesPerSecond, 16)
    // The precision of a classifier run is recorded, so a resumed bf16 run stays bf16.
    XCTAssertEqual((try jsonObject(classifier)["training"] as? [String: Any])?["precision"] as? String, "bf16")
  }

  func testAnInverterConfigWithoutItsDefaultedFieldsReadsTheDefaults() throws {
    let stored = try jsonObject(unusualInverterConfig())
    let topLevel = ["schemaVersion", "architecture", "ch", "noiseSize", "embeddingSize", "attention", "preprocessing", "seedInput", "logitMean", "logitStd", "command"]
    let losses = ["adversarial", "pixelL1", "pixelL2", "perceptual", "perceptualLayers", "perceptualNetwork", "logitConsistency"].map { "losses.\($0)" }
    let training = [
      "steps", "batchSize", "generatorLearningRate", "discriminatorLearningRate", "beta1", "beta2", "discriminatorStepsPerGeneratorStep",
      "emaDecay", "emaStart", "orthogonalRegularization", "sampleEvery", "checkpointEvery", "snapshotSteps", "trainCount", "seed", "precision",
    ].map { "training.\($0)" }
    let decoded = try decode(InverterConfig.self, from: removing(topLevel + losses + training, from: stored))
    var expected = InverterConfig(
      resolution: 64, channels: 1, representationSize: 3, classifier: "c", dataset: "shapes", preset: "fidelity", losses: InversionLossWeights(),
      training: .default)
    XCTAssertEqual(decoded, expected, "every field the file lacks takes its default")
    XCTAssertEqual(decoded.ch, InverterRecipe.default.ch, "the same default as inverter train's --ch")
    // One field at a time: only that one falls back.
    expected = unusualInverterConfig()
    for path in topLevel + losses + training where path != "schemaVersion" {
      let one = try decode(InverterConfig.self, from: removing([path], from: stored))
      XCTAssertNotEqual(one, expected, "\(path) fell back to its default")
    }
    for required in ["resolution", "channels", "logitCount", "classifier", "dataset", "preset", "losses", "training"] {
      XCTAssertThrowsError(try decode(InverterConfig.self, from: removing([required], from: stored)), required)
    }
  }

  func testAClassifierConfigWithoutItsDefaultedFieldsReadsTheDefaults() throws {
    let stored = try jsonObject(unusualClassifierConfig())
    let training = [
      "epochs", "batchSize", "learningRate", "momentum", "weightDecay", "warmupSteps", "labelSmoothing", "cropPadding", "horizontalFlip",
      "brightness", "contrast", "saturation", "trainCount", "evaluationCount", "checkpointEvery", "seed", "precision",
    ].map { "training.\($0)" }
    var decoded = try decode(ClassifierConfig.self, from: removing(training + ["schemaVersion", "width", "dataset", "torchscriptFile", "command"], from: stored))
    XCTAssertEqual(decoded.width, ClassifierConfig.defaultWidth)
    XCTAssertNil(decoded.dataset)
    XCTAssertNil(decoded.torchscriptFile)
    XCTAssertNil(decoded.command)
    var expectedTraining = ClassifierTrainingOptions.default
    expectedTraining.adversarial = unusualClassifierConfig().training?.adversarial
    XCTAssertEqual(decoded.training, expectedTraining)
    decoded = try decode(ClassifierConfig.self, from: removing(["training"], from: stored))
    XCTAssertNil(decoded.training, "an imported model records no training")
    // An attack without its step size, start and target: the defaults `AttackSpec.init` gives.
    let attack = try decode(ClassifierConfig.self, from: removing(["training.adversarial"], from: stored)).training
    XCTAssertNil(attack?.adversarial)
    var adversarial = try jsonObject(unusualClassifierConfig().training!.adversarial!)
    adversarial = removing(["stepSize", "randomStart", "targeted"], from: adversarial)
    XCTAssertEqual(try decode(AttackSpec.self, from: adversarial), AttackSpec(norm: .l2, epsilon: 0.5, steps: 3))
  }

  func testAFileFromANewerSchemaIsRefused() throws {
    var stored = try jsonObject(unusualInverterConfig())
    stored["schemaVersion"] = InverterConfig.currentSchemaVersion + 1
    XCTAssertThrowsError(try decode(InverterConfig.self, from: stored)) { XCTAssertTrue("\($0)".contains("newer Afterimage"), "\($0)") }
    var classifier = try jsonObject(unusualClassifierConfig())
    classifier["schemaVersion"] = ClassifierConfig.currentSchemaVersion + 1
    XCTAssertThrowsError(try decode(ClassifierConfig.self, from: classifier))
  }

  /// Every shipped model's config.json and results.json (some written before versions existed,
  /// some after) decode, and re-encoding keeps every value they hold. The seed study's
  /// results.json is an experiment's (`ExperimentResultTests` covers those).
  func testEveryShippedRecordDecodes() throws {
    let models = repository.appendingPathComponent("models")
    let files = FileManager.default.enumerator(at: models, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }
    var decoded = 0
    for url in files where (url.lastPathComponent == "config.json" || url.lastPathComponent == "results.json") && !url.path.contains("/studies/") {
      let stored = try JSONSerialization.jsonObject(with: try Data(contentsOf: url)) as! [String: Any]
      XCTAssertLessThanOrEqual(stored["schemaVersion"] as? Int ?? 1, 1, "shipped files are of schema 1 or predate versions: \(url.path)")
      let run = RunDirectory(url: url.deletingLastPathComponent())
      let isInverter = url.path.contains("/inverters/")
      let reencoded: [String: Any]
      switch (isInverter, url.lastPathComponent) {
      case (true, "config.json"):
        let config = try run.readJSON(InverterConfig.self, from: url)
        XCTAssertEqual(try decode(InverterConfig.self, from: try jsonObject(config)), config, url.path)
        reencoded = try jsonObject(config)
      case (false, "config.json"):
        let config = try run.readJSON(ClassifierConfig.self, from: url)
        XCTAssertEqual(try decode(ClassifierConfig.self, from: try jsonObject(config)), config, url.path)
        reencoded = try jsonObject(config)
      case (true, _):
        reencoded = try jsonObject(try run.readJSON(InverterTrainingResults.self, from: url))
      default:
        reencoded = try jsonObject(try run.readJSON(ClassifierTrainingResults.self, from: url))
      }
      assertContains(reencoded, stored, at: url.path)
      XCTAssertEqual(reencoded["schemaVersion"] as? Int, 1)
      decoded += 1
    }
    // 29 training runs with config.json and results.json, and the factor regressor's config.json.
    XCTAssertEqual(decoded, 59, "every shipped run's records")
  }

  // MARK: recipes

  func testRecipesPickThePresetOfTheirArchitectureAndApplyOverrides() throws {
    let config = ClassifierConfig(
      architecture: .resnet20, width: 0.25, channels: 3, resolution: 32, classNames: (0..<10).map { "c\($0)" },
      normalization: .identity(channels: 3), dataset: "shapes")
    let network = try NetworkClassifier(config: config, generator: Generator(seed: 1))
    var recipe = InverterRecipe()
    XCTAssertEqual(try recipe.config(classifier: network, classifierPath: "c", featureNetwork: network, command: nil).losses, .paper)
    recipe.architecture = .upconv
    XCTAssertEqual(try recipe.config(classifier: network, classifierPath: "c", featureNetwork: network, command: nil).preset, "upconv")
    recipe.preset = .fidelity
    XCTAssertThrowsError(try recipe.config(classifier: network, classifierPath: "c", featureNetwork: network, command: nil)) {
      XCTAssertTrue("\($0)".contains("does not go with --arch upconv"), "\($0)")
    }
    recipe = InverterRecipe()
    recipe.weightOverrides.weights[.perceptual] = 2
    recipe.perceptualNetwork = "eval"
    let perceptual = try recipe.config(classifier: network, classifierPath: "c", featureNetwork: network, command: nil).losses
    XCTAssertEqual(perceptual.perceptualLayers, ["layer1", "layer2"], "a perceptual weight brings the network's default layers")
    XCTAssertEqual(perceptual.perceptualNetwork, "eval")
    recipe.weightOverrides.weights[.adversarial] = 0
    recipe.weightOverrides.weights[.perceptual] = 0
    XCTAssertThrowsError(try recipe.config(classifier: network, classifierPath: "c", featureNetwork: network, command: nil)) {
      XCTAssertTrue("\($0)".contains("not all zero"), "\($0)")
    }
  }

  func testTheAdversarialTrainingAttackPolicy() throws {
    let pgd = try AttackSpec.adversarialTraining("linf:8/255", steps: 7)
    XCTAssertEqual(pgd.stepSize, 2.0 / 255, accuracy: 1e-15, "Madry's ε/4")
    XCTAssertTrue(pgd.randomStart)
    XCTAssertEqual(try AttackSpec.adversarialTraining("linf:8/255", steps: 3, stepSize: 0.01).stepSize, 0.01)
    let fgsm = try AttackSpec.adversarialTraining("fgsm:4/255", steps: 7)
    XCTAssertEqual(fgsm.steps, 1, "FGSM stays one step")
    XCTAssertEqual(fgsm.stepSize, 4.0 / 255)
    let final = AttackSpec.finalEvaluation(of: pgd)
    XCTAssertEqual(final.steps, 20)
    XCTAssertEqual(final.stepSize, 2.5 * pgd.epsilon / 20)
  }
}
