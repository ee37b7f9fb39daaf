import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

final class ClassifierTests: XCTestCase {
  func config(_ architecture: ClassifierArchitecture, width: Double = 1, channels: Int = 3, resolution: Int = 32, classes: Int = 10) -> ClassifierConfig {
    ClassifierConfig(
      architecture: architecture, width: width, channels: channels, resolution: resolution,
      classNames: try! ShapesDataset(classes: classes).classNames, normalization: Normalization(mean: Array(repeating: 0.5, count: channels), std: Array(repeating: 0.25, count: channels)))
  }

  func testResNet20ShapesNamesAndFeatureMaps() throws {
    let classifier = try NetworkClassifier(config: config(.resnet20), generator: Generator(seed: 0))
    let model = classifier.model
    XCTAssertEqual(model.parameterCount, 272_474, "ResNet-20 with 1×1 projection shortcuts, 10 classes")
    let names = model.stateDict().map(\.name)
    for expected in ["conv1.weight", "bn1.running_mean", "layer1.2.conv2.weight", "layer2.0.downsample.0.weight",
                     "layer2.0.downsample.1.num_batches_tracked", "layer3.2.bn2.bias", "fc.weight", "fc.bias"] {
      XCTAssertTrue(names.contains(expected), expected)
    }
    XCTAssertFalse(names.contains("layer1.0.downsample.0.weight"), "no projection where the shape is unchanged")
    let images = Tensor.rand([2, 3, 32, 32], generator: Generator(seed: 1))
    let (logits, features) = try classifier.features(images, names: ["stem", "layer1", "layer2", "layer3", "pool"])
    XCTAssertEqual(logits.shape, [2, 10])
    XCTAssertEqual(features["layer1"]?.shape, [2, 16, 32, 32])
    XCTAssertEqual(features["layer2"]?.shape, [2, 32, 16, 16])
    XCTAssertEqual(features["layer3"]?.shape, [2, 64, 8, 8])
    XCTAssertEqual(features["pool"]?.shape, [2, 64])
    XCTAssertThrowsError(try classifier.features(images, names: ["layer9"])) { XCTAssertTrue("\($0)".contains("layer1"), "\($0)") }
    XCTAssertTrue(classifier.logits(images).allClose(logits, atol: 1e-6))
  }

  func testResNet18AndOtherWidthsAndChannels() throws {
    let resnet18 = try NetworkClassifier(config: config(.resnet18, width: 0.25, channels: 1, resolution: 28, classes: 4))
    XCTAssertEqual(resnet18.logits(Tensor.rand([2, 1, 28, 28])).shape, [2, 4])
    XCTAssertEqual(try resnet18.features(Tensor.rand([1, 1, 28, 28]), names: ["layer4"]).features["layer4"]?.shape, [1, 128, 4, 4])
    let half = try NetworkClassifier(config: config(.resnet20, width: 0.5))
    XCTAssertEqual(try half.features(Tensor.rand([1, 3, 32, 32]), names: ["layer3"]).features["layer3"]?.shape, [1, 32, 8, 8])
    let evaluation = try NetworkClassifier(config: config(.evalnet))
    XCTAssertEqual(evaluation.logits(Tensor.rand([2, 3, 32, 32])).shape, [2, 10])
    XCTAssertEqual(evaluation.featureNames, ["block1", "block2", "block3", "pool"])
    XCTAssertFalse(evaluation.model.stateDict().contains { $0.name.contains("layer") }, "a different architecture")
  }

  func testResNet50LoadsTorchvisionLayoutWeightsAndGivesItsLogits() throws {
    let url = try temporaryDirectory().appendingPathComponent("resnet50.safetensors")
    try runPython("resnet50_reference.py", [url.path])
    let file = try Safetensors.read(url)
    let weights = Dictionary(uniqueKeysWithValues: file.tensors.filter { $0.name.hasPrefix("weights.") }.map { (String($0.name.dropFirst(8)), $0.tensor) })
    let model = ResNet50(classes: 7)
    XCTAssertEqual(Set(model.stateDict().map(\.name)), Set(weights.keys), "names equal torchvision's")
    for (name, tensor) in model.stateDict() { XCTAssertEqual(tensor.shape, weights[name]?.shape, name) }
    try model.loadStateDict(weights)
    model.eval()
    let logits = withNoGrad { model(try! file.tensor("input")) }
    assertClose(logits, try file.tensor("logits"), atol: 1e-4)
  }

  // MARK: attacks

  static var tinyClassifier: NetworkClassifier?

  /// A small network trained briefly to tell circles from squares (16×16), trained once.
  func trainedTinyClassifier() throws -> NetworkClassifier {
    if let cached = Self.tinyClassifier { return cached }
    let classifier = try NetworkClassifier(config: config(.resnet20, width: 0.25, resolution: 16, classes: 2), generator: Generator(seed: 3))
    let data = try ShapesDataset(split: .train, classes: 2, resolution: 16, count: 1024, seed: 1)
    // At 1e-3 it fits its 1024 images (98.6% after 12 epochs, on AVX-512 and AVX2 kernels
    // alike); at 5e-3 its training accuracy swung between 64% and 95% with float rounding.
    let optimizer = Adam(classifier.model.namedParameters(), learningRate: 1e-3)
    for epoch in 0..<12 {
      for batch in DataLoader(data, batchSize: 64, seed: 2).epoch(epoch) {
        let loss = Loss.crossEntropy(classifier.logits(batch.images), batch.labels)
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
      }
    }
    classifier.train(false)
    classifier.model.zeroGrad()
    Self.tinyClassifier = classifier
    return classifier
  }

  func testFusedKernelsTrainAResNetAsTheComposedOpsDo() throws {
    // Three SGD steps of a ResNet-20 (its batch norms, ReLUs and residual adds fused or composed
    // from aten's ops) in float64, from the same weights on the same batches: the weights, the
    // running statistics and the losses agree to rounding. Float32 training then differs only
    // by float32 rounding, which a few steps of training amplify but do not bias.
    func train(fused: Bool) throws -> (losses: [Double], state: [(name: String, tensor: Tensor)]) {
      let classifier = try NetworkClassifier(config: config(.resnet20, width: 0.25, resolution: 16, classes: 2), generator: Generator(seed: 3))
      classifier.model.convert(to: .float64)
      classifier.model.setFusedKernels(fused)
      let optimizer = SGD(classifier.model.namedParameters(), learningRate: 0.05, momentum: 0.9, nesterov: true)
      let data = try ShapesDataset(split: .train, classes: 2, resolution: 16, count: 96, seed: 1)
      var losses: [Double] = []
      for batch in DataLoader(data, batchSize: 32, seed: 2).epoch(0) {
        let loss = Loss.crossEntropy(classifier.logits(batch.images.to(.float64).channelsLast()), batch.labels)
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
      }
      return (losses, classifier.model.stateDict())
    }
    let (fused, composed) = (try train(fused: true), try train(fused: false))
    XCTAssertEqual(fused.losses.count, 3)
    assertClose(fused.losses, composed.losses, atol: 1e-10)
    for ((name, a), (_, b)) in zip(fused.state, composed.state) where a.dtype.isFloatingPoint {
      XCTAssertLessThan((a - b).abs().max().item(), 1e-9, name)
    }
  }

  func testPGDStaysInTheBallAndRaisesTheLoss() throws {
    let classifier = try trainedTinyClassifier()
    let batch = try ShapesDataset(split: .test, classes: 2, resolution: 16, count: 64).batch(at: Array(0..<32))
    let before = Loss.crossEntropy(classifier.logits(batch.images), batch.labels).item()
    for spec in [
      try AttackSpec.parse("pgd-linf:8/255", steps: 10), try AttackSpec.parse("pgd-l2:0.5", steps: 10),
      try AttackSpec.parse("fgsm:8/255"),
    ] {
      let adversarial = try Attacks.perturb(batch.images, labels: batch.labels, classifier: classifier, spec: spec, generator: Generator(seed: 4))
      let delta = adversarial - batch.images
      switch spec.norm {
      case .linf: XCTAssertLessThanOrEqual(delta.abs().max().item(), spec.epsilon + 1e-6, "\(spec)")
      case .l2: XCTAssertLessThanOrEqual(delta.flattened(from: 1).norm(dims: [1]).max().item(), spec.epsilon + 1e-5, "\(spec)")
      }
      XCTAssertGreaterThanOrEqual(adversarial.min().item(), 0)
      XCTAssertLessThanOrEqual(adversarial.max().item(), 1)
      let after = Loss.crossEntropy(classifier.logits(adversarial), batch.labels).item()
      XCTAssertGreaterThan(after, before, "\(spec) raises the loss")
    }
  }

  func testTargetedPGDMovesTowardTheTarget() throws {
    let classifier = try trainedTinyClassifier()
    let batch = try ShapesDataset(split: .test, classes: 2, resolution: 16, count: 64).batch(at: Array(0..<32))
    let targets = 1 - batch.labels
    let spec = try AttackSpec.parse("pgd-linf:16/255", steps: 10, targeted: true)
    let adversarial = try Attacks.perturb(batch.images, labels: targets, classifier: classifier, spec: spec, generator: Generator(seed: 5))
    let before = Loss.crossEntropy(classifier.logits(batch.images), targets).item()
    let after = Loss.crossEntropy(classifier.logits(adversarial), targets).item()
    XCTAssertLessThan(after, before)
  }

  func testEvaluationUnderAttackLeavesTheWeightsAlone() throws {
    let classifier = try trainedTinyClassifier()
    let snapshot = classifier.model.stateDict().map { ($0.name, $0.tensor.clone()) }
    // Its own training images: the tiny classifier fits them but generalises little (54–69% on
    // test images, moving with float rounding), and what matters here is a classifier whose
    // accuracy an attack can lower.
    let data = try ShapesDataset(split: .train, classes: 2, resolution: 16, count: 512, seed: 1)
    let result = try ClassifierEvaluation.evaluate(
      classifier, on: data, attack: try AttackSpec.parse("pgd-linf:8/255", steps: 5), perClass: true)
    XCTAssertEqual(result.count, 512)
    XCTAssertGreaterThan(result.cleanAccuracy, 0.9, "the tiny classifier learned its images (chance: 0.5)")
    print("tiny classifier: clean \(result.cleanAccuracy), under PGD-5 \(result.attackAccuracy!)")
    XCTAssertLessThan(result.attackAccuracy!, result.cleanAccuracy)
    XCTAssertEqual(result.perClass?.count, 2)
    for ((name, before), (_, after)) in zip(snapshot, classifier.model.stateDict()) {
      XCTAssertTrue(before.equals(after), "\(name) changed")
    }
    XCTAssertTrue(classifier.model.parameters.allSatisfy { $0.grad == nil }, "no gradients accumulated")
    XCTAssertFalse(classifier.isTraining)
  }

  func testEvaluatingOnAnotherDataSetsClassesIsRefused() throws {
    let classifier = try NetworkClassifier(config: config(.evalnet, width: 0.25, resolution: 16, classes: 10))
    let forty = try ShapesDataset(split: .test, classes: 40, resolution: 16, count: 8)
    XCTAssertThrowsError(try ClassifierEvaluation.evaluate(classifier, on: forty)) { XCTAssertTrue("\($0)".contains("10 classes"), "\($0)") }
    let renamed = ClassifierConfig(
      architecture: .evalnet, width: 0.25, channels: 3, resolution: 16, classNames: (0..<10).map { "digit \($0)" },
      normalization: Normalization(mean: [0, 0, 0], std: [1, 1, 1]))
    XCTAssertThrowsError(try ClassifierEvaluation.evaluate(try NetworkClassifier(config: renamed), on: try ShapesDataset(split: .test, resolution: 16, count: 8))) {
      XCTAssertTrue("\($0)".contains("label 0 is 'digit 0' for the classifier, 'circle' in shapes"), "\($0)")
    }
  }

  func testAttackSpecsParseAndRejectNonsense() throws {
    let spec = try AttackSpec.parse("pgd-linf:8/255", steps: 20)
    XCTAssertEqual(spec.epsilon, 8.0 / 255, accuracy: 1e-12)
    XCTAssertEqual(spec.stepSize, 2.5 * 8 / 255 / 20, accuracy: 1e-12)
    XCTAssertEqual(spec.description, "PGD-20 L∞ ε=8/255")
    XCTAssertEqual(try AttackSpec.parse("fgsm:0.1").steps, 1)
    XCTAssertThrowsError(try AttackSpec.parse("pgd-linf")) { XCTAssertTrue("\($0)".contains("KIND:EPSILON"), "\($0)") }
    XCTAssertThrowsError(try AttackSpec.parse("cw:0.1")) { XCTAssertTrue("\($0)".contains("unknown attack"), "\($0)") }
  }

  // MARK: TorchScript import

  func testImportedTorchScriptClassifierGivesPyTorchsLogits() throws {
    let directory = try temporaryDirectory()
    let modelPath = directory.appendingPathComponent("classifier.pt").path
    let referencePath = directory.appendingPathComponent("reference.safetensors")
    try runPython("export_classifier.py", [modelPath, referencePath.path])
    let run = RunDirectory(url: directory.appendingPathComponent("run"))
    _ = try TorchScriptImport.importModel(
      modelPath: modelPath, channels: 3, resolution: 16, classNames: ["a", "b", "c", "d", "e"],
      normalization: Normalization(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]), run: run)
    let classifier = try Classifiers.load(run.url.path)
    let reference = try Safetensors.read(referencePath)
    assertClose(try classifier.logits(try reference.tensor("images")), try reference.tensor("logits"), atol: 1e-6)
    XCTAssertThrowsError(try classifier.train(true))
    XCTAssertThrowsError(try classifier.features(Tensor.rand([1, 3, 16, 16]), names: ["layer1"]))

    XCTAssertThrowsError(try TorchScriptImport.importModel(
      modelPath: modelPath, channels: 3, resolution: 16, classNames: (0..<7).map(String.init),
      normalization: Normalization(mean: [0, 0, 0], std: [1, 1, 1]), run: RunDirectory(url: directory.appendingPathComponent("wrong")))) { error in
      XCTAssertTrue("\(error)".contains("returned shape [2, 5]"), "\(error)")
      XCTAssertTrue("\(error)".contains("expected [2, 7]"), "\(error)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("wrong").path), "a failed import writes nothing")
    XCTAssertThrowsError(try TorchScriptImport.importModel(
      modelPath: modelPath, channels: 1, resolution: 16, classNames: ["a", "b", "c", "d", "e"],
      normalization: Normalization(mean: [0], std: [1]), run: RunDirectory(url: directory.appendingPathComponent("gray")))) { error in
      XCTAssertTrue("\(error)".contains("refused a batch of shape [2, 1, 16, 16]"), "\(error)")
    }
    let notScript = directory.appendingPathComponent("weights.pt")
    try Data("PK not really".utf8).write(to: notScript)
    XCTAssertThrowsError(try TorchScriptImport.importModel(
      modelPath: notScript.path, channels: 3, resolution: 16, classNames: ["a"],
      normalization: Normalization(mean: [0, 0, 0], std: [1, 1, 1]), run: RunDirectory(url: directory.appendingPathComponent("x")))) { error in
      XCTAssertTrue("\(error)".contains("not a TorchScript archive"), "\(error)")
    }
  }

  // MARK: training runs

  func tinyTrainer(_ run: RunDirectory, epochs: Int = 2, adversarial: AttackSpec? = nil) throws -> ClassifierTrainer {
    var options = ClassifierTrainingOptions()
    options.epochs = epochs
    options.batchSize = 32
    options.learningRate = 0.05
    options.warmupSteps = 2
    options.checkpointEvery = 3
    options.adversarial = adversarial
    options.evaluationCount = 64
    let train = try ShapesDataset(split: .train, resolution: 16, count: 128, seed: 2)
    let test = try ShapesDataset(split: .test, resolution: 16, count: 64, seed: 2)
    let trainer = try ClassifierTrainer(run: run, config: config(.resnet20, width: 0.25, resolution: 16), options: options, train: train, test: test)
    trainer.log = nil
    trainer.showProgress = false
    return trainer
  }

  func testTrainingWritesARunDirectoryThatLoads() throws {
    let run = RunDirectory(url: try temporaryDirectory().appendingPathComponent("run"))
    let summary = try tinyTrainer(run, adversarial: try AttackSpec.parse("pgd-linf:8/255", steps: 2)).fit(resume: false)
    XCTAssertEqual(summary.steps, 8)
    for file in [run.configURL, run.modelURL, run.checkpointURL, run.metricsURL] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: file.path), file.lastPathComponent)
    }
    let metrics = try String(contentsOf: run.metricsURL, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(metrics.filter { $0.contains("test_accuracy") }.count, 2, "one evaluation per epoch")
    // fit writes results.json itself: the test set clean and under the final attack.
    let results = try JSONFiles.read(ClassifierTrainingResults.self, from: run.resultsURL)
    XCTAssertEqual(results.steps, 8)
    XCTAssertEqual(results.evaluation.count, 64)
    XCTAssertNotNil(results.evaluation.attackAccuracy)
    XCTAssertEqual(summary.evaluation?.cleanAccuracy, results.evaluation.cleanAccuracy)
    let loaded = try Classifiers.load(run.url.path)
    XCTAssertEqual(loaded.config.training?.adversarial?.steps, 2)
    let fromFile = try Classifiers.load(run.modelURL.path)
    let images = Tensor.rand([2, 3, 16, 16])
    XCTAssertTrue(try loaded.logits(images).equals(try fromFile.logits(images)), "the weights file alone is self-describing")
  }

  func testResumedTrainingEndsWhereAnUninterruptedRunEnds() throws {
    let root = try temporaryDirectory()
    let straight = RunDirectory(url: root.appendingPathComponent("straight"))
    try tinyTrainer(straight).fit(resume: false)
    let interrupted = RunDirectory(url: root.appendingPathComponent("interrupted"))
    let first = try tinyTrainer(interrupted)
    let partial = try first.fit(resume: false, stopAfter: 5)  // mid-epoch, after a checkpoint at step 3
    XCTAssertTrue(partial.interrupted)
    XCTAssertFalse(FileManager.default.fileExists(atPath: interrupted.modelURL.path), "no final weights yet")
    let second = try tinyTrainer(interrupted)
    try second.fit(resume: true)
    XCTAssertEqual(second.step, 8)
    let a = try Safetensors.read(straight.modelURL).dictionary
    let b = try Safetensors.read(interrupted.modelURL).dictionary
    XCTAssertEqual(Set(a.keys), Set(b.keys))
    for (name, tensor) in a { XCTAssertTrue(tensor.equals(b[name]!), "\(name) differs after resuming") }
  }

  func testBrokenRunsAreReportedClearly() throws {
    let root = try temporaryDirectory()
    XCTAssertThrowsError(try Classifiers.load(root.appendingPathComponent("absent").path)) {
      XCTAssertTrue("\($0)".contains("no classifier at"), "\($0)")
    }
    XCTAssertThrowsError(try Classifiers.load(root.path)) { XCTAssertTrue("\($0)".contains("no config.json"), "\($0)") }
    let run = RunDirectory(url: root.appendingPathComponent("run"))
    let trainer = try tinyTrainer(run, epochs: 1)
    try trainer.fit(resume: false)
    let data = try Data(contentsOf: run.checkpointURL)
    try data.prefix(data.count / 2).write(to: run.checkpointURL)
    XCTAssertThrowsError(try tinyTrainer(run).fit(resume: true)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
    // Weights for another architecture do not load into this one.
    let other = try NetworkClassifier(config: config(.evalnet, resolution: 16))
    try other.model.saveWeights(to: run.modelURL, metadata: ["config": try config(.resnet20, width: 0.25, resolution: 16).jsonString()])
    XCTAssertThrowsError(try Classifiers.load(run.modelURL.path)) { XCTAssertTrue("\($0)".contains("missing keys"), "\($0)") }
  }
}
