@testable import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

final class InverterTests: XCTestCase {
  override func setUp() {
    setenv("AFTERIMAGE_CACHE", FileManager.default.temporaryDirectory.appendingPathComponent("afterimage-test-cache").path, 1)
  }

  func testGeneratorAndDiscriminatorShapesAtEveryResolution() throws {
    for resolution in [32, 64, 128] {
      let architecture = try BigGANArchitecture.forResolution(resolution)
      let g = LogitGenerator(architecture: architecture, representationSize: 10, noiseSize: 20, embeddingSize: 8, ch: 4, channels: 3, generator: Generator(seed: 1))
      let d = ProjectionDiscriminator(architecture: architecture, representationSize: 10, ch: 4, channels: 3, generator: Generator(seed: 2))
      let logits = Tensor.randn([2, 10], generator: Generator(seed: 3))
      let noise = Tensor.randn([2, g.noiseSize], generator: Generator(seed: 4))
      let images = g(representation: logits, noise: noise)
      XCTAssertEqual(images.shape, [2, 3, resolution, resolution], "G at \(resolution)")
      XCTAssertLessThanOrEqual(images.abs().max().item(), 1, "tanh output")
      XCTAssertEqual(d(images, representation: logits).shape, [2], "D at \(resolution)")
      XCTAssertEqual(g.noiseSize % (architecture.generatorBlocks + 1), 0, "z splits evenly over the blocks")
    }
    XCTAssertThrowsError(try BigGANArchitecture.forResolution(48)) { XCTAssertTrue("\($0)".contains("32, 64 and 128"), "\($0)") }
    let gray = LogitGenerator(architecture: try .forResolution(32), representationSize: 4, ch: 4, channels: 1)
    XCTAssertEqual(gray(representation: Tensor.zeros([1, 4]), noise: Tensor.zeros([1, gray.noiseSize])).shape, [1, 1, 32, 32])
  }

  /// With `[z₀, embedding(ℓ)]` in the seed the representation reaches the 4×4 layout itself:
  /// the seed layer is wider by the embedding, and its gradients are autograd's.
  func testTheSeedCanTakeTheRepresentation() throws {
    let architecture = try BigGANArchitecture.forResolution(32)
    let plain = LogitGenerator(architecture: architecture, representationSize: 5, noiseSize: 16, embeddingSize: 6, ch: 2, useAttention: false, generator: Generator(seed: 1))
    let seeded = LogitGenerator(
      architecture: architecture, representationSize: 5, noiseSize: 16, embeddingSize: 6, ch: 2, useAttention: false, seedInput: .noiseAndRepresentation,
      generator: Generator(seed: 1))
    let width = { (g: LogitGenerator) in g.stateDict().first { $0.name == "linear.weight_orig" }!.tensor.shape[1] }
    XCTAssertEqual(width(plain), 4, "BigGAN's seed: one noise chunk of 16 / (3 blocks + 1)")
    XCTAssertEqual(width(seeded), 4 + 6, "the chunk and the embedding")
    seeded.convert(to: .float64)
    seeded.eval()
    let logits = Tensor.randn([2, 5], generator: Generator(seed: 2), dtype: .float64)
    let noise = Tensor.randn([2, seeded.noiseSize], generator: Generator(seed: 3), dtype: .float64)
    let seedWeight = try XCTUnwrap(seeded.namedParameters().first { $0.name == "linear.weight_orig" }?.tensor)
    assertGradientsMatchFiniteDifferences([logits, seedWeight], tolerance: 1e-5) { randomProjection(of: seeded(representation: logits, noise: noise)) }
    // Through the config: recorded, and a config from before the choice means the noise alone.
    var config = InverterConfig(resolution: 32, channels: 3, representationSize: 5, classifier: "c", dataset: "shapes", preset: "fidelity", losses: InversionLossWeights(), training: .default)
    config.seedInput = .noiseAndRepresentation
    XCTAssertEqual(try XCTUnwrap(try config.makeGenerator() as? LogitGenerator).seedInput, .noiseAndRepresentation)
    XCTAssertEqual(InverterConfig.Defaults.seedInput, .noise)
  }

  /// With the map placed in the seed, each cell of a 2×2 feature grid reaches only its own
  /// quarter of the 4×4 seed; the gradients are autograd's; a representation without a grid is
  /// refused with what to do, and a config records the grid.
  func testTheSeedCanPlaceASpatialMapWhereItIs() throws {
    let architecture = try BigGANArchitecture.forResolution(32)
    let grid = [3, 2, 2]  // C, h, w: 12 values per image
    let generator = LogitGenerator(
      architecture: architecture, representationSize: 12, noiseSize: 16, embeddingSize: 6, ch: 2, useAttention: false,
      seedInput: .noiseRepresentationAndMap, grid: grid, generator: Generator(seed: 1))
    generator.convert(to: .float64)
    generator.eval()
    let logits = Tensor.randn([2, 12], generator: Generator(seed: 2), dtype: .float64)
    let noise = Tensor.randn([2, generator.noiseSize], generator: Generator(seed: 3), dtype: .float64)
    // Change the top-left cell of every channel (entries c·4 + 0) and no other; the embedding
    // is held fixed, so only the placed map can carry the change.
    let embedded = generator.embedding(logits)
    let chunk = noise.narrow(dim: 1, start: 0, length: generator.chunkSize)
    var mask = [Double](repeating: 0, count: 12)
    for channel in 0..<3 { mask[channel * 4] = 1 }
    let moved = logits + Tensor(mask, shape: [1, 12]).to(.float64)
    let change = withNoGrad {
      (generator.seedLayout(representation: moved, embedded: embedded, noise: chunk) - generator.seedLayout(representation: logits, embedded: embedded, noise: chunk))
        .abs().sum(dims: [0, 1])
    }  // [4, 4]
    XCTAssertGreaterThan(change.narrow(dim: 0, start: 0, length: 2).narrow(dim: 1, start: 0, length: 2).min().item(), 1e-6, "the top-left quarter moves")
    XCTAssertEqual(change.narrow(dim: 0, start: 2, length: 2).sum().item() + change.narrow(dim: 1, start: 2, length: 2).sum().item(), 0, accuracy: 1e-12, "nothing else does")
    let mapWeight = try XCTUnwrap(generator.namedParameters().first { $0.name == "map_seed.weight_orig" }?.tensor)
    assertGradientsMatchFiniteDifferences([logits, mapWeight], tolerance: 1e-5) { randomProjection(of: generator(representation: logits, noise: noise)) }
    // Through the config.
    var config = InverterConfig(resolution: 32, channels: 3, representationSize: 12, classifier: "c", dataset: "shapes", preset: "fidelity", losses: InversionLossWeights(), training: .default)
    config.seedInput = .noiseRepresentationAndMap
    XCTAssertThrowsError(try config.makeGenerator()) { XCTAssertTrue("\($0)".contains("--representation features:NAME"), "\($0)") }
    config.representationGrid = grid
    let made = try XCTUnwrap(try config.makeGenerator() as? LogitGenerator)
    XCTAssertEqual(made.grid, grid)
    let decoded = try JSONDecoder().decode(InverterConfig.self, from: JSONEncoder().encode(config))
    XCTAssertEqual(decoded.representationGrid, grid)
    XCTAssertEqual(decoded.seedInput, .noiseRepresentationAndMap)
  }

  /// The logit term's jitter moves each image by whole pixels, its own shift per image, the
  /// same for the same (seed, step), with gradients to the pixels in view.
  func testTheLogitJitterShiftsEachImageByWholePixels() throws {
    let images = Tensor.randn([6, 3, 8, 8], generator: Generator(seed: 4), dtype: .float64)
    let shifted = InverterObjective.shifted(images, by: 2, seed: 7, step: 3)
    assertClose(shifted, InverterObjective.shifted(images, by: 2, seed: 7, step: 3), atol: 0)
    var seen = Set<[Int]>()
    for index in 0..<6 {
      // Find the shift that explains this image: its interior equals the original's, moved.
      let original = images[index], moved = shifted[index]
      let matches = (-2...2).flatMap { dy in (-2...2).map { dx in [dx, dy] } }.filter { shift in
        let (dx, dy) = (shift[0], shift[1])
        let kept = moved.narrow(dim: 1, start: max(0, -dy), length: 8 - abs(dy)).narrow(dim: 2, start: max(0, -dx), length: 8 - abs(dx))
        let source = original.narrow(dim: 1, start: max(0, dy), length: 8 - abs(dy)).narrow(dim: 2, start: max(0, dx), length: 8 - abs(dx))
        return (kept - source).abs().max().item() < 1e-9
      }
      XCTAssertEqual(matches.count, 1, "image \(index) is one whole-pixel shift of its original")
      seen.insert(matches.first ?? [])
    }
    XCTAssertGreaterThan(seen.count, 1, "each image draws its own shift")
    XCTAssertGreaterThan((InverterObjective.shifted(images, by: 2, seed: 7, step: 4) - shifted).abs().max().item(), 1e-3, "a new step, new shifts")
    let small = Tensor.randn([2, 1, 5, 5], generator: Generator(seed: 5), dtype: .float64)
    assertGradientsMatchFiniteDifferences([small], tolerance: 1e-6) { randomProjection(of: InverterObjective.shifted(small, by: 1, seed: 1, step: 0)) }
    var weights = InversionLossWeights.fidelity(layers: ["layer1"])
    weights.logitJitter = 9
    XCTAssertThrowsError(try weights.validate()) { XCTAssertTrue("\($0)".contains("--logit-jitter"), "\($0)") }
    let old = try JSONDecoder().decode(InversionLossWeights.self, from: Data(#"{"logitConsistency": 1}"#.utf8))
    XCTAssertEqual(old.logitJitter, 0, "runs before the option read their fakes unshifted")
  }

  /// Every shipped BigGAN inverter predates the choice: it loads with the noise-only seed it was
  /// trained with.
  func testShippedInvertersKeepTheSeedTheyWereTrainedWith() throws {
    let models = parityScripts.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("models/inverters")
    var seeds: [SeedInput: Int] = [:]
    for folder in try FileManager.default.contentsOfDirectory(atPath: models.path).sorted() {
      let run = RunDirectory(url: models.appendingPathComponent(folder))
      let config = try run.readJSON(InverterConfig.self, from: run.configURL)
      guard config.architecture == .biggan else { continue }
      // The command that made it says which seed it was trained with (none: the noise alone).
      let command = try XCTUnwrap(config.command, folder)
      let recorded = command.contains("--seed-input noise+representation") ? SeedInput.noiseAndRepresentation : .noise
      XCTAssertEqual(config.seedInput, recorded, folder)
      let weights = try Safetensors.read(run.modelURL).dictionary
      let generator = try XCTUnwrap(try config.makeGenerator() as? LogitGenerator)
      XCTAssertNoThrow(try generator.loadStateDict(weights), "\(folder) loads as trained")
      seeds[config.seedInput, default: 0] += 1
    }
    XCTAssertGreaterThan(seeds[.noise] ?? 0, 3, "old configs, from before the seed could take the representation, load as trained")
    XCTAssertGreaterThan(seeds[.noiseAndRepresentation] ?? 0, 1, "the Shapes inverters are trained with the representation in the seed")
  }

  func testStateDictNamesFollowBigGAN() throws {
    let g = LogitGenerator(architecture: try .forResolution(32), representationSize: 10, ch: 8)
    let names = Set(g.stateDict().map(\.name))
    for expected in ["shared.weight", "linear.weight_orig", "blocks.0.bn1.gain.weight_orig", "blocks.2.conv_sc.weight_orig",
                     "blocks.1.bn2.bn.running_mean", "attention.1.gamma", "output_bn.weight", "output_conv.weight_orig"] {
      XCTAssertTrue(names.contains(expected), expected)
    }
    XCTAssertFalse(names.contains("shared.weight_orig"), "the logit embedding is not spectrally normalised")
    let d = ProjectionDiscriminator(architecture: try .forResolution(32), representationSize: 10, ch: 8)
    let dNames = Set(d.stateDict().map(\.name))
    XCTAssertTrue(dNames.contains("embed.weight_orig"), "the projection is spectrally normalised")
    XCTAssertTrue(dNames.contains("blocks.0.conv_sc.weight_orig"))
  }

  func testSpectralNormBoundsEveryLayerOfTheDiscriminator() throws {
    let d = ProjectionDiscriminator(architecture: try .forResolution(32), representationSize: 5, ch: 4, generator: Generator(seed: 1))
    let images = Tensor.randn([2, 3, 32, 32])
    let logits = Tensor.randn([2, 5])
    for _ in 0..<40 { _ = d(images, representation: logits) }  // power iteration runs in training mode
    var checked = 0
    for (name, module) in d.namedModules() {
      let weight: Tensor?
      if let conv = module as? Conv2d, conv.spectralNormalization != nil {
        weight = conv.effectiveWeight.reshaped([conv.weight.size(0), -1])
      } else if let linear = module as? Linear, linear.spectralNormalization != nil {
        weight = linear.effectiveWeight
      } else {
        weight = nil
      }
      guard let weight else { continue }
      XCTAssertLessThanOrEqual(weight.singularValues()[0].item(), 1.02, "\(name)")
      checked += 1
    }
    XCTAssertGreaterThan(checked, 8)
  }

  func testHingeLossesOnKnownScores() {
    let real = Tensor([2, 0.5, -1] as [Float])
    let fake = Tensor([-2, 0, 1] as [Float])
    let (lossReal, lossFake) = HingeLoss.discriminator(real: real, fake: fake)
    XCTAssertEqual(lossReal.item(), (0 + 0.5 + 2) / 3, accuracy: 1e-6)
    XCTAssertEqual(lossFake.item(), (0 + 1 + 2) / 3, accuracy: 1e-6)
    XCTAssertEqual(HingeLoss.generator(fake: fake).item(), 1.0 / 3 * -(-2 + 0 + 1), accuracy: 1e-6)
  }

  func testLogitStandardisationUsesTheRecordedStatistics() throws {
    var config = InverterConfig(resolution: 32, channels: 3, representationSize: 2, classifier: "c", dataset: "shapes", preset: "paper", losses: .paper, training: InverterTrainingOptions())
    let logits = Tensor([3, 10, 5, 20] as [Float], shape: [2, 2])
    XCTAssertTrue(config.preprocess(logits).equals(logits), "raw by default")
    config.preprocessing = .standardized
    config.representationMean = [4, 15]
    config.representationStd = [1, 5]
    XCTAssertEqual(config.preprocess(logits).scalars(as: Float.self), [-1, -1, 1, 1])
  }

  func testStampingRecordsTheProvenanceAndRefusesAnotherClassifierOrData() throws {
    let root = try temporaryDirectory()
    let first = try tinyClassifier(in: root, classes: 10)
    let other = root.appendingPathComponent("other").path
    let otherClassifier = try NetworkClassifier(config: try Classifiers.load(first).config, generator: Generator(seed: 8))
    try Classifiers.save(otherClassifier, to: RunDirectory(url: URL(fileURLWithPath: other)))
    let classifier = try Classifiers.load(first)
    let train = try ShapesDataset(split: .train, resolution: 32, count: 8, seed: 5)
    let test = try ShapesDataset(split: .test, resolution: 32, count: 4, seed: 5)
    var config = InverterConfig(resolution: 32, channels: 3, representationSize: 2, classifier: first, dataset: "shapes", preset: "paper", losses: .paper, training: InverterTrainingOptions())
    config.preprocessing = .standardized
    let values = Tensor([1, 10, 3, 30] as [Float], shape: [2, 2])

    let stamped = try config.stamped(classifier: classifier, classifierPath: first, train: train, heldOut: test, representationValues: values, run: "runs/i")
    XCTAssertEqual(stamped.classifierDigest, try RepresentationCache.weightsDigest(first, config: classifier.config))
    XCTAssertEqual(stamped.data?.train.count, 8)
    XCTAssertEqual(stamped.data?.test.count, 4)
    XCTAssertEqual(stamped.representationMean, [2, 20])
    XCTAssertEqual(stamped.representationStd.map { ($0 * 1e4).rounded() / 1e4 }, [1.4142, 14.1421], "the sample standard deviation, as torch.std")
    XCTAssertEqual(try stamped.stamped(classifier: classifier, classifierPath: first, train: train, heldOut: test, representationValues: values * 2, run: "runs/i"),
                   stamped, "a second stamp with the same classifier and data changes nothing, the recorded statistics included")

    let swapped = try Classifiers.load(other)
    XCTAssertThrowsError(try stamped.stamped(classifier: swapped, classifierPath: other, train: train, heldOut: test, representationValues: values, run: "runs/i")) { error in
      XCTAssertTrue("\(error)".contains("runs/i was started with another classifier than \(other)"), "\(error)")
    }
    let changed = try ShapesDataset(split: .train, resolution: 32, count: 9, seed: 5)
    XCTAssertThrowsError(try stamped.stamped(classifier: classifier, classifierPath: first, train: changed, heldOut: test, representationValues: values, run: "runs/i")) { error in
      XCTAssertTrue("\(error)".contains("the train split of shapes has changed since"), "\(error)")
    }
  }

  // MARK: training

  /// A tiny classifier run directory (untrained ResNet-20 at width 0.25) on 32×32 Shapes.
  func tinyClassifier(in root: URL, classes: Int = 10) throws -> String {
    let config = ClassifierConfig(
      architecture: .resnet20, width: 0.25, channels: 3, resolution: 32, classNames: try ShapesDataset(classes: classes).classNames,
      normalization: Normalization(mean: [0.3, 0.3, 0.3], std: [0.2, 0.2, 0.2]), dataset: "shapes")
    let classifier = try NetworkClassifier(config: config, generator: Generator(seed: 7))
    let run = RunDirectory(url: root.appendingPathComponent("classifier-\(classes)"))
    try Classifiers.save(classifier, to: run)
    return run.url.path
  }

  func tinyTrainer(
    _ run: RunDirectory, classifierPath: String, steps: Int, preset: InversionLossWeights = .fidelity(layers: ["layer1"]),
    architecture: InverterConfig.Architecture = .biggan, representation: Representation = .logits, sampleEvery: Int = 1000
  ) throws -> InverterTrainer {
    var options = InverterTrainingOptions()
    options.steps = steps
    options.batchSize = 16
    options.sampleEvery = sampleEvery
    options.checkpointEvery = 4
    options.generatorLearningRate = 1e-3
    options.discriminatorLearningRate = 1e-3
    var config = InverterConfig(resolution: 32, channels: 3, representationSize: 10, classifier: classifierPath, dataset: "shapes", preset: "test", losses: preset, training: options)
    config.ch = 4
    config.noiseSize = 16
    config.embeddingSize = 8
    config.attention = false
    config.architecture = architecture
    let classifier = try Classifiers.load(classifierPath)
    config.representation = representation
    config.representationSize = try classifier.representationSize(representation)
    let train = try ShapesDataset(split: .train, resolution: 32, count: 64, seed: 5)
    let test = try ShapesDataset(split: .test, resolution: 32, count: 16, seed: 5)
    let trainer = try InverterTrainer(run: run, config: config, classifier: classifier, classifierPath: classifierPath, train: train, heldOut: test, datasetKey: "shapes-test-64")
    trainer.log = nil
    trainer.showProgress = false
    return trainer
  }

  func metricsColumn(_ run: RunDirectory, _ key: String) throws -> [Double] {
    try String(contentsOf: run.metricsURL, encoding: .utf8).split(separator: "\n").compactMap { line in
      (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?[key] as? Double
    }
  }

  func testATinyInverterLowersItsReconstructionError() throws {
    let root = try temporaryDirectory()
    let classifierPath = try tinyClassifier(in: root)
    let run = RunDirectory(url: root.appendingPathComponent("inverter"))
    let trainer = try tinyTrainer(run, classifierPath: classifierPath, steps: 40)
    try trainer.fit(resume: false)
    let pixel = try metricsColumn(run, "G_loss_pixel")  // logged every 10 steps
    XCTAssertEqual(pixel.count, 4)
    XCTAssertLessThan(pixel.suffix(2).min()!, pixel.first! * 0.9, "L1 fell: \(pixel)")
    for file in [run.configURL, run.modelURL, run.checkpointURL] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: file.path), file.lastPathComponent)
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.samplesURL.path), ["step-000040.png"])
    // The run loads as an Inverter and reconstructs images of the right shape, in [0, 1].
    let inverter = try Inverter.load(run.url.path)
    let images = try ShapesDataset(split: .test, count: 4).batch(at: [0, 1, 2, 3]).images
    let reconstructed = try inverter.reconstruct(images: images, noise: inverter.noise(count: 4, seed: 0))
    XCTAssertEqual(reconstructed.shape, [4, 3, 32, 32])
    XCTAssertGreaterThanOrEqual(reconstructed.min().item(), 0)
    XCTAssertLessThanOrEqual(reconstructed.max().item(), 1)
  }

  func testResumingGivesTheSameStepsAsNotStopping() throws {
    let root = try temporaryDirectory()
    let classifierPath = try tinyClassifier(in: root)
    let straight = RunDirectory(url: root.appendingPathComponent("straight"))
    try tinyTrainer(straight, classifierPath: classifierPath, steps: 8, preset: .paper).fit(resume: false)
    let stopped = RunDirectory(url: root.appendingPathComponent("stopped"))
    try tinyTrainer(stopped, classifierPath: classifierPath, steps: 8, preset: .paper).fit(resume: false, stopAfter: 5)
    XCTAssertFalse(FileManager.default.fileExists(atPath: stopped.modelURL.path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: stopped.resultsURL.path), "a stopped run has no results")
    let resumed = try tinyTrainer(stopped, classifierPath: classifierPath, steps: 8, preset: .paper)
    try resumed.fit(resume: true)
    XCTAssertEqual(resumed.step, 8)
    // fit writes results.json itself, so a library caller gets the file the CLI gets.
    let results = try JSONFiles.read(InverterTrainingResults.self, from: stopped.resultsURL)
    XCTAssertEqual([results.steps, results.stepsThisRun], [8, 3])
    XCTAssertEqual(try JSONFiles.read(InverterTrainingResults.self, from: straight.resultsURL).stepsThisRun, 8)
    let a = try Safetensors.read(straight.checkpointURL).dictionary
    let b = try Safetensors.read(stopped.checkpointURL).dictionary
    XCTAssertEqual(Set(a.keys), Set(b.keys))
    for (name, tensor) in a where !name.hasPrefix("rng") {
      XCTAssertTrue(tensor.equals(b[name]!), "\(name) differs after resuming")
    }
    XCTAssertEqual(try metricsColumn(straight, "D_loss_real"), try metricsColumn(stopped, "D_loss_real"))
  }

  func testMismatchedClassifiersBrokenCheckpointsAndMissingRunsAreReported() throws {
    let root = try temporaryDirectory()
    let classifierPath = try tinyClassifier(in: root)
    let run = RunDirectory(url: root.appendingPathComponent("inverter"))
    try tinyTrainer(run, classifierPath: classifierPath, steps: 4, preset: .paper).fit(resume: false)

    let otherClassifier = try tinyClassifier(in: root, classes: 7)
    XCTAssertThrowsError(try Inverter.load(run.url.path, classifierOverride: otherClassifier)) {
      XCTAssertTrue("\($0)".contains("gives 7 logits"), "\($0)")
      XCTAssertTrue("\($0)".contains("trained on 10"), "\($0)")
    }
    XCTAssertThrowsError(try Inverter.load(root.appendingPathComponent("nowhere").path)) {
      XCTAssertTrue("\($0)".contains("no inverter at"), "\($0)")
    }
    let data = try Data(contentsOf: run.checkpointURL)
    try data.prefix(data.count - 100).write(to: run.checkpointURL)
    XCTAssertThrowsError(try tinyTrainer(run, classifierPath: classifierPath, steps: 8, preset: .paper).fit(resume: true)) {
      XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
    }
    XCTAssertThrowsError(
      try InverterTrainer(
        run: run,
        config: InverterConfig(resolution: 32, channels: 3, representationSize: 10, classifier: otherClassifier, dataset: "shapes", preset: "paper", losses: .paper, training: InverterTrainingOptions()),
        classifier: try Classifiers.load(otherClassifier), classifierPath: otherClassifier,
        train: try ShapesDataset(count: 32), heldOut: try ShapesDataset(split: .test, count: 8), datasetKey: "x")
    ) { XCTAssertTrue("\($0)".contains("gives 7 logits"), "\($0)") }
  }

  // MARK: baselines

  func testUpconvDecoderShapesAndDeterminism() {
    for resolution in [32, 64] {
      let decoder = UpconvDecoder(representationSize: 10, resolution: resolution, channels: 1, ch: 4, generator: Generator(seed: 1))
      let logits = Tensor.randn([3, 10], generator: Generator(seed: 2))
      let a = decoder(representation: logits, noise: Tensor.randn([3, decoder.noiseSize], generator: Generator(seed: 3)))
      let b = decoder(representation: logits, noise: Tensor.randn([3, decoder.noiseSize], generator: Generator(seed: 4)))
      XCTAssertEqual(a.shape, [3, 1, resolution, resolution])
      XCTAssertTrue(a.equals(b), "the decoder ignores the noise")
    }
  }

  func testUpconvBaselineTrainsWithPixelLossAlone() throws {
    let root = try temporaryDirectory()
    let classifierPath = try tinyClassifier(in: root)
    let run = RunDirectory(url: root.appendingPathComponent("upconv"))
    try tinyTrainer(run, classifierPath: classifierPath, steps: 30, preset: .upconv, architecture: .upconv).fit(resume: false)
    let pixel = try metricsColumn(run, "G_loss_pixel")
    XCTAssertLessThan(pixel.last!, pixel.first!, "L2 fell: \(pixel)")
    XCTAssertEqual(try metricsColumn(run, "D_loss_real").allSatisfy { $0 == 0 }, true, "no discriminator training")
    let inverter = try Inverter.load(run.url.path)
    XCTAssertTrue(inverter.generator is UpconvDecoder)
  }

  func testOptimisationBasedInversionMatchesTheLogits() throws {
    let root = try temporaryDirectory()
    let classifier = try Classifiers.load(try tinyClassifier(in: root))
    let originals = try ShapesDataset(split: .test, count: 4).batch(at: [0, 1, 2, 3]).images
    let targets = try withNoGrad { try classifier.logits(originals) }
    var options = OptimizationInversion.Options()
    options.steps = 1
    let (_, early) = try OptimizationInversion.invert(targets, classifier: classifier, options: options)
    options.steps = 60
    let (images, late) = try OptimizationInversion.invert(targets, classifier: classifier, options: options)
    XCTAssertEqual(images.shape, [4, 3, 32, 32])
    XCTAssertLessThan(late, early * 0.5, "logit error fell from \(early) to \(late)")
    XCTAssertGreaterThanOrEqual(images.min().item(), 0)
    XCTAssertLessThanOrEqual(images.max().item(), 1)
  }

  /// Equal work with the PyTorch peers (benchmarks/peer/inverter.py, the plain and the tuned
  /// one): from their initial weights and batch, our training iteration has the same parameter
  /// counts and the same first-step losses, at 32×32 gray and 64×64 colour.
  func testFirstTrainingStepMatchesThePyTorchPeers() throws {
    let root = try temporaryDirectory()
    for (resolution, channels) in [(32, 1), (64, 3)] {
      let weights = root.appendingPathComponent("weights-\(resolution).safetensors").path
      let batch = root.appendingPathComponent("batch-\(resolution).safetensors").path
      let peerScript = "../../benchmarks/peer/inverter.py"
      _ = try runPython(peerScript, ["--resolution", String(resolution), "--channels", String(channels), "--batch-size", "8", "--threads", "1",
                                     "--write-init", weights, "--write-batch", batch])
      let peers = try ["plain", "tuned"].map { variant in
        let output = try runPython(peerScript, ["--first-step", weights, "--batch", batch, "--threads", "1", "--variant", variant])
        return (variant, try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: Any])
      }
      let peer = peers[0].1

      let batchFile = try Safetensors.read(URL(fileURLWithPath: batch))
      let benchmark = try InverterBenchmark(
        images: try batchFile.tensor("images"), batchSize: 8, weights: try Safetensors.read(URL(fileURLWithPath: weights)),
        folder: root.appendingPathComponent("run-\(resolution)"))
      let counts = benchmark.parameterCounts
      XCTAssertEqual(counts.generator, peer["g_params"] as? Int)
      XCTAssertEqual(counts.discriminator, peer["d_params"] as? Int)
      XCTAssertEqual(counts.classifier, peer["classifier_params"] as? Int)
      let losses = try benchmark.step(
        try benchmark.firstBatch(),
        noise: .init(discriminator: try batchFile.tensor("d_noise"), generator: try batchFile.tensor("g_noise")))
      let ours = [
        "d_loss_real": losses.discriminatorReal, "d_loss_fake": losses.discriminatorFake, "g_loss_adv": losses[.adversarial],
        "g_loss_pixel": losses.pixel, "g_loss_perceptual": losses[.perceptual], "g_loss_logit": losses[.logitConsistency],
      ]
      for (variant, peer) in peers {
        for (name, value) in ours {
          let reference = try XCTUnwrap(peer[name] as? Double, name)
          // Relative: at initialisation the discriminator's scores are in the hundreds.
          XCTAssertEqual(value, reference, accuracy: 1e-4 * max(1, abs(reference)), "\(name) at \(resolution)×\(resolution)×\(channels), \(variant) peer")
        }
      }
      XCTAssertGreaterThan(losses[.perceptual], 0, "the perceptual term ran")
    }
  }

  /// Equal FLOPs with the tuned peer: one training iteration of ours and of the peer, recorded by
  /// libtorch's profiler and counted by benchmarks/flops.py, which must also agree with PyTorch's
  /// FlopCounterMode on the peer.
  func testATrainingStepDoesTheTunedPeersFLOPs() throws {
    let root = try temporaryDirectory()
    Torch.manualSeed(0)
    let benchmark = try InverterBenchmark(images: Tensor.rand([32, 1, 32, 32]), batchSize: 8, ch: 16, folder: root.appendingPathComponent("run"))
    let batch = try XCTUnwrap(benchmark.batches(epoch: 0).makeIterator().next())
    _ = try benchmark.step(batch)  // the first step chooses oneDNN's kernels
    let ours = root.appendingPathComponent("ours.json").path
    try Data(try Torch.recordOperations { _ = try benchmark.step(batch) }.utf8).write(to: URL(fileURLWithPath: ours))
    let peer = root.appendingPathComponent("peer.json").path
    let report = try runPython("../../benchmarks/peer/inverter.py", [
      "--time", "--variant", "tuned", "--resolution", "32", "--channels", "1", "--batch-size", "8", "--steps", "1", "--warmup", "1",
      "--threads", "1", "--flops", "--op-trace", peer,
    ])
    let counter = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(report.split(separator: "\n").last!.utf8)) as? [String: Any])?["flops_per_step"] as? Int)
    let benchmarks = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("benchmarks").path
    let counts = try runPythonCode("import sys; sys.path.insert(0, '\(benchmarks)'); import flops; print(flops.count(flops.read('\(ours)')), flops.count(flops.read('\(peer)')))")
      .split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    XCTAssertEqual(counts.count, 2, "\(counts)")
    XCTAssertEqual(counts.last, counter, "the profiler-based count is FlopCounterMode's")
    XCTAssertGreaterThan(counter, 1_000_000_000)
    XCTAssertEqual(Double(counts[0]), Double(counts[1]), accuracy: 0.01 * Double(counts[1]), "ours against the tuned peer")
  }
}
