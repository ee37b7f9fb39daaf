import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// Models as PyTorch 2.x users export them (Tests/parity/pytorch2_models.py): a small vision
/// transformer (scaled_dot_product_attention, LayerNorm, GELU) and a MobileNetV3-style network
/// (depthwise convolutions, hardswish, squeeze-excitation), traced to TorchScript and compiled
/// to AOTInductor packages, imported and inverted.
final class PyTorch2ImportTests: XCTestCase {
  /// One export for the whole class: compiling the two .pt2 packages takes the most time here.
  nonisolated(unsafe) static var exported: URL?

  override func setUpWithError() throws {
    setenv("AFTERIMAGE_CACHE", FileManager.default.temporaryDirectory.appendingPathComponent("afterimage-test-cache").path, 1)
    if Self.exported == nil {
      let directory = FileManager.default.temporaryDirectory.appendingPathComponent("afterimage-pytorch2-\(UUID().uuidString.prefix(8))")
      try runPython("pytorch2_models.py", [directory.path, "--pt2"])
      Self.exported = directory
    }
  }

  override class func tearDown() {
    if let exported, ProcessInfo.processInfo.environment["AFTERIMAGE_KEEP_TEST_FILES"] == nil {
      try? FileManager.default.removeItem(at: exported)
    }
  }

  var normalization: Normalization { Normalization(mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]) }
  var classes: [String] { (0..<10).map { "class \($0)" } }

  func file(_ name: String) -> String { Self.exported!.appendingPathComponent(name).path }

  func importModel(_ name: String, format: ImportedModelFormat) throws -> (any ImageClassifier, RunDirectory) {
    let run = RunDirectory(url: try temporaryDirectory("\(name)\(format)").appendingPathComponent("run"))
    _ = try TorchScriptImport.importModel(
      modelPath: file("\(name).\(format == .pt2 ? "pt2" : "pt")"), format: format, channels: 3, resolution: 32,
      classNames: classes, normalization: normalization, run: run)
    return (try Classifiers.load(run.url.path), run)
  }

  /// PyTorch's inputs and eager logits for the exported models.
  var reference: Safetensors.File { get throws { try Safetensors.read(URL(fileURLWithPath: file("reference.safetensors"))) } }

  /// Imports the exported ViT and MobileNet in `format`, checks the architecture each records,
  /// and hands each to `check` with PyTorch's input images and that model's eager logits.
  func checkEachExportedModel(
    _ format: ImportedModelFormat, recordedAs architecture: ClassifierArchitecture,
    _ check: (_ name: String, _ classifier: any ImageClassifier, _ images: Tensor, _ eagerLogits: Tensor) throws -> Void
  ) throws {
    let reference = try reference
    let images = try reference.tensor("images")
    for name in ["vit", "mobilenet"] {
      let (classifier, _) = try importModel(name, format: format)
      XCTAssertEqual(classifier.config.architecture, architecture)
      try check(name, classifier, images, try reference.tensor("\(name)_logits"))
    }
  }

  func testTracedViTAndMobileNetGivePyTorchsLogits() throws {
    try checkEachExportedModel(.torchscript, recordedAs: .torchscript) { name, classifier, images, eagerLogits in
      let logits = try withNoGrad { try classifier.logits(images) }
      print("\(name) TorchScript: largest logit difference from eager PyTorch \(maxDifference(logits, eagerLogits))")
      assertClose(logits, eagerLogits, atol: 1e-5, name)
    }
  }

  func testCompiledPackagesGivePyTorchsLogits() throws {
    try checkEachExportedModel(.pt2, recordedAs: .pt2) { name, classifier, images, eagerLogits in
      XCTAssertFalse(classifier.isDifferentiable)
      // Compiled kernels fuse and reorder float sums, so agreement is to float rounding, not bits.
      print("\(name) .pt2: largest logit difference from eager PyTorch \(maxDifference(try classifier.logits(images), eagerLogits))")
      assertClose(try classifier.logits(images), eagerLogits, atol: 1e-5, name)
      assertClose(try classifier.logits(images.narrow(dim: 0, start: 0, length: 1)),
                   eagerLogits.narrow(dim: 0, start: 0, length: 1), atol: 1e-5, "\(name), batch of 1 (dynamic batch)")
      XCTAssertThrowsError(try classifier.features(images, names: ["layer1"])) { XCTAssertTrue("\($0)".contains("need the model as TorchScript"), "\($0)") }
    }
  }

  func testSubmoduleOutputsAreFeatureMapsWithSensibleDefaults() throws {
    let (mobilenet, _) = try importModel("mobilenet", format: .torchscript)
    XCTAssertTrue(mobilenet.featureNames.contains("features.0"), "\(mobilenet.featureNames)")
    XCTAssertTrue(mobilenet.featureNames.contains("features.2.block.6"), "the squeeze-excitation inside a block: \(mobilenet.featureNames)")
    let images = Tensor.rand([2, 3, 32, 32], generator: Generator(seed: 3))
    let (logits, maps) = try mobilenet.features(images, names: ["features.0", "features.2"])
    assertClose(logits, try mobilenet.logits(images), atol: 1e-6, "the same forward pass")
    XCTAssertEqual(maps["features.0"]?.shape, [2, 16, 16, 16])
    XCTAssertEqual(maps["features.2"]?.shape, [2, 24, 8, 8])
    XCTAssertEqual(mobilenet.defaultFeatureLayers, ["features.1", "features"], "the end of the last block at 16×16 and at 8×8")
    XCTAssertThrowsError(try mobilenet.features(images, names: ["layer1"])) { error in
      XCTAssertTrue("\(error)".contains("no submodule output named layer1"), "\(error)")
      XCTAssertTrue("\(error)".contains("features.0"), "names what it has: \(error)")
    }
    // Gradients reach the input through a submodule output, as the perceptual loss needs.
    let input = images.detached().requiringGrad()
    let (_, produced) = try mobilenet.features(input, names: ["features.1"])
    let gradient = Autograd.gradients(of: [produced["features.1"]!.pow(2).sum()], withRespectTo: [input])[0]
    XCTAssertGreaterThan(gradient.abs().sum().item(), 0)

    let (vit, _) = try importModel("vit", format: .torchscript)
    XCTAssertEqual(vit.defaultFeatureLayers, ["patch_embed", "blocks"], "the patch embedding, then the transformer's tokens")
    XCTAssertEqual(try vit.features(images, names: ["blocks.0"]).features["blocks.0"]?.shape, [2, 17, 32])
    // A submodule output is a representation an inverter or a probe can read: maps pooled to
    // 4×4 cells and flattened, tokens averaged.
    XCTAssertEqual(try mobilenet.represent(images, as: .features("features.2")).shape, [2, 24 * 16])
    XCTAssertEqual(try mobilenet.representationSize(.features("features.0")), 16 * 16)
    XCTAssertEqual(try vit.represent(images, as: .features("blocks.0")).shape, [2, 32])
    XCTAssertTrue(mobilenet.representations.contains(.features("features.2.block.6")))
  }

  func testImportedModelsAreInvertedWithTheDefaultRecipes() throws {
    let train = try ShapesDataset(split: .train, resolution: 32, count: 64, seed: 5)
    let heldOut = try ShapesDataset(split: .test, resolution: 32, count: 16, seed: 5)
    for (name, format, preset) in [("mobilenet", ImportedModelFormat.torchscript, "fidelity"), ("vit", .torchscript, "fidelity"), ("vit", .pt2, "paper")] {
      let (classifier, run) = try importModel(name, format: format)
      var options = InverterTrainingOptions()
      options.steps = 3
      options.batchSize = 16
      options.sampleEvery = 100
      options.checkpointEvery = 100
      let losses: InversionLossWeights = preset == "fidelity" ? .fidelity(layers: classifier.defaultFeatureLayers) : .paper
      var config = InverterConfig(
        resolution: 32, channels: 3, representationSize: 10, classifier: run.url.path, dataset: "shapes", preset: preset, losses: losses, training: options)
      config.ch = 4
      let inverterRun = RunDirectory(url: try temporaryDirectory("inverter\(name)\(format)").appendingPathComponent("inverter"))
      let trainer = try InverterTrainer(
        run: inverterRun, config: config, classifier: classifier, classifierPath: run.url.path, train: train, heldOut: heldOut,
        datasetKey: "shapes-test-\(name)-\(format)")
      trainer.log = nil
      trainer.showProgress = false
      try trainer.fit(resume: false)
      XCTAssertEqual(trainer.step, 3, "\(name) \(format)")
      let inverter = try Inverter.load(inverterRun.url.path)
      let logits = try withNoGrad { try classifier.logits(try heldOut.batch(at: [0, 1, 2, 3]).images) }
      let images = inverter.reconstruct(representation: logits, noise: inverter.noise(count: 4, seed: 1))
      XCTAssertEqual(images.shape, [4, 3, 32, 32])
      XCTAssertEqual(images.isFinite().to(.float32).min().item(), 1)
    }
  }

  func testAScriptedModelsHelperMethodsAreSeenThrough() throws {
    let (scripted, _) = try importModel("scripted", format: .torchscript)
    XCTAssertEqual(scripted.featureNames, ["stem", "stem.0", "stem.1", "layer1", "layer1.0", "layer1.1", "fc"])
    XCTAssertEqual(scripted.defaultFeatureLayers, ["stem", "layer1"])
    let reference = try reference
    let (logits, maps) = try scripted.features(try reference.tensor("images"), names: ["layer1", "layer1"])
    assertClose(logits, try reference.tensor("scripted_logits"), atol: 1e-5)
    XCTAssertEqual(maps["layer1"]?.shape, [6, 16, 8, 8], "a name asked twice is returned once")
  }

  func testAPackageRunsOnlyWhereItWasCompiled() throws {
    let (classifier, _) = try importModel("vit", format: .pt2)
    XCTAssertThrowsError(try classifier.move(to: .cuda(0))) { error in
      XCTAssertTrue("\(error)".contains("was compiled for the CPU and cannot run on cuda:0"), "\(error)")
    }
    XCTAssertEqual(classifier.device, .cpu)
  }

  func testAPackageCannotTrainWithLossesThatNeedGradients() throws {
    let (classifier, run) = try importModel("vit", format: .pt2)
    let train = try ShapesDataset(split: .train, resolution: 32, count: 32, seed: 5)
    var options = InverterTrainingOptions()
    options.batchSize = 16
    let config = InverterConfig(
      resolution: 32, channels: 3, representationSize: 10, classifier: run.url.path, dataset: "shapes", preset: "fidelity",
      losses: .fidelity(layers: []), training: options)
    XCTAssertThrowsError(try InverterTrainer(
      run: RunDirectory(url: try temporaryDirectory().appendingPathComponent("x")), config: config, classifier: classifier,
      classifierPath: run.url.path, train: train, heldOut: train, datasetKey: "unused")) { error in
      XCTAssertTrue("\(error)".contains("use --preset paper"), "\(error)")
    }
  }

  func testFilesFromANewerPyTorchGiveAClearError() throws {
    let target = RunDirectory(url: try temporaryDirectory().appendingPathComponent("run"))
    func importing(_ name: String) -> Error? {
      do {
        _ = try TorchScriptImport.importModel(
          modelPath: file(name), channels: 3, resolution: 32, classNames: classes, normalization: normalization, run: target)
        return nil
      } catch { return error }
    }
    let format = "\(importing("newer-format.pt").map { "\($0)" } ?? "no error")"
    XCTAssertTrue(format.contains("TorchScript file format 99"), format)
    XCTAssertTrue(format.contains("newer than libtorch \(Torch.version)"), format)
    XCTAssertTrue(format.contains("Save it again with PyTorch \(Torch.version)"), format)
    let op = "\(importing("newer-operator.pt").map { "\($0)" } ?? "no error")"
    XCTAssertTrue(op.contains("aten::linear_from_the_future"), op)
    XCTAssertTrue(op.contains("saved by a newer PyTorch"), op)
    XCTAssertFalse(FileManager.default.fileExists(atPath: target.configURL.path), "a refused import writes nothing")
    let notAPackage = try temporaryDirectory().appendingPathComponent("weights.pt2")
    try Data("PK not a package".utf8).write(to: notAPackage)
    XCTAssertThrowsError(try TorchScriptImport.importModel(
      modelPath: notAPackage.path, format: .pt2, channels: 3, resolution: 32, classNames: classes, normalization: normalization, run: target)) { error in
      XCTAssertTrue("\(error)".contains("could not be loaded as an AOTInductor package"), "\(error)")
    }
  }
}
