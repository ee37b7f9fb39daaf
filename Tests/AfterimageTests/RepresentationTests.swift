import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// Inverting any layer (`Representation`), its cache, the probes that read any representation,
/// and the studies beyond the paper run end to end on tiny models.
final class RepresentationTests: XCTestCase {
  /// The inverter tests' tiny classifier and trainer.
  let inverters = InverterTests(name: "helpers") { _ in }
  var repository: URL { parityScripts.deletingLastPathComponent().deletingLastPathComponent() }

  override func setUp() {
    setenv("AFTERIMAGE_CACHE", FileManager.default.temporaryDirectory.appendingPathComponent("afterimage-test-cache-\(getpid())").path, 1)
  }

  func testRepresentationsParseAndPoolToVectors() throws {
    XCTAssertEqual(try Representation(parsing: "logits"), .logits)
    XCTAssertEqual(try Representation(parsing: "features:layer2"), .features("layer2"))
    for bad in ["", "features:", "layer2", "Logits"] {
      XCTAssertThrowsError(try Representation(parsing: bad)) { XCTAssertTrue("\($0)".contains("features:NAME"), "\($0)") }
    }
    // Round trip through JSON as the text the command line takes.
    let encoded = try JSONEncoder().encode([Representation.features("pool"), .logits])
    XCTAssertEqual(String(decoding: encoded, as: UTF8.self), #"["features:pool","logits"]"#)
    XCTAssertEqual(try JSONDecoder().decode([Representation].self, from: encoded), [.features("pool"), .logits])
    // Maps pool to at most 4×4 cells, keep their cells' means; tokens average; vectors stay.
    let map = Tensor.randn([2, 3, 8, 8], generator: Generator(seed: 1))
    let pooled = try Representation.vector(map, named: "m")
    XCTAssertEqual(pooled.shape, [2, 3 * 16])
    let corner = map.narrow(dim: 2, start: 0, length: 2).narrow(dim: 3, start: 0, length: 2).mean(dims: [2, 3])  // [2, 3]
    XCTAssertEqual(pooled.scalars(as: Float.self)[0], corner.scalars(as: Float.self)[0], accuracy: 1e-5, "cell (0, 0) of channel 0")
    XCTAssertEqual(try Representation.vector(Tensor.zeros([2, 5, 2, 2]), named: "small").shape, [2, 20], "a map under 4×4 is kept")
    XCTAssertEqual(try Representation.vector(Tensor.zeros([2, 7, 6]), named: "tokens").shape, [2, 6])
    XCTAssertEqual(try Representation.vector(Tensor.zeros([2, 9]), named: "pool").shape, [2, 9])
    XCTAssertThrowsError(try Representation.vector(Tensor.zeros([2]), named: "odd")) { XCTAssertTrue("\($0)".contains("odd"), "\($0)") }
    // A classifier answers each of its representations, and names its maps when asked for another.
    let classifier = try Classifiers.load(try inverters.tinyClassifier(in: try temporaryDirectory()))
    XCTAssertEqual(classifier.representations.map(\.description), ["features:stem", "features:layer1", "features:layer2", "features:layer3", "features:pool", "logits"])
    let images = try ShapesDataset(split: .test, count: 3).batch(at: [0, 1, 2]).images
    XCTAssertEqual(try classifier.represent(images, as: .features("layer2")).shape, [3, 8 * 16])
    XCTAssertEqual(try classifier.representationSize(.features("pool")), 16)
    XCTAssertThrowsError(try classifier.represent(images, as: .features("layer9"))) {
      XCTAssertTrue("\($0)".contains("stem, layer1, layer2, layer3, pool"), "\($0)")
    }
  }

  func testAnInverterOfFeaturesTrainsLowersItsErrorAndLoads() throws {
    let root = try temporaryDirectory()
    let classifierPath = try inverters.tinyClassifier(in: root)
    let run = RunDirectory(url: root.appendingPathComponent("inverter"))
    let trainer = try inverters.tinyTrainer(run, classifierPath: classifierPath, steps: 40, representation: .features("layer2"))
    try trainer.fit(resume: false)
    let pixel = try inverters.metricsColumn(run, "G_loss_pixel")
    XCTAssertLessThan(pixel.suffix(2).min()!, pixel.first! * 0.9, "L1 fell: \(pixel)")
    let consistency = try inverters.metricsColumn(run, "G_loss_logit")
    XCTAssertTrue(consistency.allSatisfy { $0 > 0 && $0.isFinite }, "the consistency term compares feature vectors: \(consistency)")
    let config = try run.readJSON(InverterConfig.self, from: run.configURL)
    XCTAssertEqual(config.representation, .features("layer2"))
    XCTAssertEqual(config.representationSize, 8 * 16, "8 channels on a 4×4 grid")
    let inverter = try Inverter.load(run.url.path)
    let images = try ShapesDataset(split: .test, count: 4).batch(at: [0, 1, 2, 3]).images
    XCTAssertEqual(try inverter.represent(images).shape, [4, 128])
    let reconstructed = try inverter.reconstruct(images: images, noise: inverter.noise(count: 4, seed: 0))
    XCTAssertEqual(reconstructed.shape, [4, 3, 32, 32])
    // The reconstruction metrics run on it (they condition on its representation, not the logits).
    let evaluation = try Classifiers.load(classifierPath)
    let (report, _, _) = try ReconstructionAnalysis.run(
      dataset: try ShapesDataset(split: .test, count: 20), count: 20, classifier: inverter.classifier, evaluation: evaluation, noiseSamples: 2,
      representation: inverter.config.representation
    ) { code, seed in
      XCTAssertEqual(code.shape[1], 128)
      return inverter.reconstruct(representation: code, noise: inverter.noise(count: code.shape[0], seed: seed))
    }
    XCTAssertEqual(report.count, 20)
  }

  func testTheRepresentationCacheIsKeyedByLayerAndClassifier() throws {
    let root = try temporaryDirectory()
    setenv("AFTERIMAGE_CACHE", root.appendingPathComponent("cache").path, 1)
    let path = try inverters.tinyClassifier(in: root)
    let data = try ShapesDataset(split: .train, count: 40, seed: 3)
    func values(_ representation: Representation) throws -> Tensor {
      try RepresentationCache.values(
        of: representation, classifier: try Classifiers.load(path), classifierPath: path, dataset: data, datasetKey: "k", progress: false)
    }
    func files() throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("cache").path)) }
    let logits = try values(.logits)
    let layer1 = try values(.features("layer1"))
    let pool = try values(.features("pool"))
    XCTAssertEqual([logits.shape, layer1.shape, pool.shape], [[40, 10], [40, 64], [40, 16]])
    XCTAssertEqual(try files().count, 3, "one cache file per layer")
    let direct = try withNoGrad { try Classifiers.load(path).represent(try data.batch(at: Array(0..<40)).images, as: .features("layer1")) }
    XCTAssertTrue(try values(.features("layer1")).allClose(direct, rtol: 1e-5, atol: 1e-6), "read back from the cache")
    XCTAssertEqual(try files().count, 3, "a second read computes nothing new")
    // Other weights at the same path: a new entry, and values of the new classifier.
    let config = try Classifiers.load(path).config
    try Classifiers.save(try NetworkClassifier(config: config, generator: Generator(seed: 99)), to: RunDirectory(path))
    let changed = try values(.features("layer1"))
    XCTAssertFalse(changed.allClose(layer1, rtol: 1e-3, atol: 1e-4), "the cache answered for the old classifier")
    XCTAssertEqual(try files().count, 4)
  }

  func testProbesRecoverAPlantedFactorAndNothingFromAShuffledOne() throws {
    let data = try ShapesDataset(split: .train, count: 1200, seed: 4)
    let batch = try data.batch(at: Array(0..<1200))
    let factors = batch.factors!
    let labels = batch.labels.scalars(as: Int64.self).map(Int.init)
    let probe = RepresentationProbe(dataset: data, fitting: factors)
    // A 64-dimensional representation that is a random linear mix of every factor's target, plus noise.
    let targets = probe.targets(factors, labels: labels).to(.float32)  // [N, T]
    let mixing = Tensor.randn([targets.shape[1], 64], generator: Generator(seed: 5))
    let planted = targets.matmul(mixing) + Tensor.randn([1200, 64], generator: Generator(seed: 6)) * 0.05
    let shuffled = planted.indexSelect(dim: 0, index: Tensor.randperm(1200, generator: Generator(seed: 7)))
    func scores(_ representation: Tensor) -> RepresentationProbe.Scores {
      probe.scores(
        train: representation.narrow(dim: 0, start: 0, length: 1000), trainFactors: Array(factors[0..<1000]), trainLabels: Array(labels[0..<1000]),
        test: representation.narrow(dim: 0, start: 1000, length: 200), testFactors: Array(factors[1000...]), testLabels: Array(labels[1000...]),
        epochs: 60)
    }
    let found = scores(planted)
    let lost = scores(shuffled)
    for factor in FactorResult.visibleFactors {
      XCTAssertGreaterThan(found.linear[factor]!.value, 0.97, "\(factor): linear probe on the planted representation")
      XCTAssertGreaterThan(found.mlp[factor]!.value, 0.85, "\(factor): MLP probe on the planted representation")
      XCTAssertLessThan(abs(lost.linear[factor]!.value), 0.1, "\(factor): linear probe on a shuffled one")
      XCTAssertLessThan(lost.mlp[factor]!.value, 0.1, "\(factor): MLP probe on a shuffled one")
      XCTAssertTrue(found.linear[factor]!.hasInterval, "\(factor) carries an interval")
    }
  }
}
