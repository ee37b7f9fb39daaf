import Foundation
import Torch

/// `analyze information`: what each representation of one Shapes classifier holds of the
/// nuisance factors, from the input side to the logits (a linear and an MLP probe per
/// representation, `RepresentationProbe`), and what inverters of some of those representations
/// recover in pictures (the factor regressor on their reconstructions, beside its ceiling on the
/// originals).
public struct InformationExperiment: Experiment {
  /// A classifier trained on Shapes (any class count).
  public var classifier: String
  /// The representations to probe, in depth order; nil: every feature map, then the logits.
  public var representations: [Representation]?
  /// Inverters of this classifier (any representation each), whose reconstructions are scored.
  public var inverters: [String] = []
  /// Held-out images scored, and clean training images the probes are fit on.
  public var count = 1000
  public var trainCount = 10_000
  /// Epochs of the MLP probe.
  public var epochs = 40
  /// A factor regressor (`analyze factor-regressor`); nil: the shipped one. Needed only to score
  /// reconstructions.
  public var regressor: String?

  public init(classifier: String) { self.classifier = classifier }

  public static let defaults = InformationExperiment(classifier: "")

  public var subject: String { classifier }

  public func run(on device: Device) throws -> ExperimentOutcome<InformationResult> {
    let model = try Classifiers.load(classifier, device: device)
    let (train, test, datasetName) = try Self.shapes(of: model, path: classifier)
    let chosen = representations ?? model.representations
    guard !chosen.isEmpty else { throw RunError("no representation to probe: name at least one (logits or features:NAME)") }
    let sizes = try chosen.map { try model.representationSize($0) }  // unknown names fail here, before any work
    let stored = try inverters.isEmpty ? nil : FactorRegressor.loadDefault(regressor)
    if !inverters.isEmpty && stored == nil {
      throw RunError("scoring reconstructions needs the factor regressor (\(FactorRegressor.shippedFolder), or --regressor DIR from `afterimage analyze factor-regressor`)")
    }
    let trainBatch = try train.batch(at: Array(0..<min(trainCount, train.count)))
    let testBatch = try test.batch(at: Array(0..<min(count, test.count)))
    let (trainFactors, testFactors) = (trainBatch.factors!, testBatch.factors!)
    let trainLabels = trainBatch.labels.scalars(as: Int64.self).map(Int.init)
    let testLabels = testBatch.labels.scalars(as: Int64.self).map(Int.init)
    // The regressor's encoding when there is one, so probe and reconstruction R² share targets.
    let probe = stored.map { RepresentationProbe(encoding: $0.encoding, symmetry: { train.rotationSymmetry(ofClass: $0) }) }
      ?? RepresentationProbe(dataset: train, fitting: trainFactors)

    var layers: [InformationResult.Layer] = []
    let bar = ProgressBar(total: chosen.count, label: "probing", unit: "layer")
    for (index, (representation, size)) in zip(chosen, sizes).enumerated() {
      let scores = probe.scores(
        train: try Self.encode(trainBatch.images, model, representation), trainFactors: trainFactors, trainLabels: trainLabels,
        test: try Self.encode(testBatch.images, model, representation), testFactors: testFactors, testLabels: testLabels, epochs: epochs)
      layers.append(.init(representation: representation.description, size: size, linear: scores.linear, mlp: scores.mlp))
      bar.update(index + 1)
    }

    let digest = try RepresentationCache.weightsDigest(classifier, config: model.config)
    var ceiling: [String: Estimate]?
    var rows = [testBatch.images.narrow(dim: 0, start: 0, length: min(12, testBatch.images.shape[0]))]
    if let stored {
      let targets = probe.targets(testFactors, labels: testLabels)
      let mask = probe.rotationMask(labels: testLabels)
      ceiling = stored.encoding.rSquaredEstimates(predictions: stored.predict(testBatch.images), targets: targets, rotationMask: mask)
      for path in inverters {
        let inverter = try Inverter.load(path, classifierOverride: classifier, device: device)
        if let recorded = inverter.config.classifierDigest, recorded != digest {
          throw RunError("the inverter in \(path) was trained on another classifier than \(classifier): give inverters of this classifier")
        }
        let reconstructions = Tensor.cat(try testBatch.images.split(size: 250).enumerated().map { part, images in
          try inverter.reconstruct(images: images, noise: inverter.noise(count: images.shape[0], seed: UInt64(part)))
        })
        rows.append(reconstructions.narrow(dim: 0, start: 0, length: rows[0].shape[0]).to(.cpu))
        let recovered = stored.encoding.rSquaredEstimates(predictions: stored.predict(reconstructions), targets: targets, rotationMask: mask)
        let name = inverter.config.representation.description
        if let index = layers.firstIndex(where: { $0.representation == name }) {
          layers[index].reconstructions = recovered
          layers[index].inverter = path
        } else {
          throw RunError("the inverter in \(path) inverts \(name), which is not among the representations probed (\(chosen.map(\.description).joined(separator: ", ")))")
        }
      }
    }
    let result = InformationResult(
      classifier: classifier, classifierDigest: digest,
      dataset: datasetName, classCount: model.config.classCount, count: testBatch.labels.count, trainCount: trainBatch.labels.count,
      layers: layers, ceiling: ceiling, regressor: stored.map { _ in regressor ?? FactorRegressor.shippedFolder })
    var figures: [Figure] = [.chart(name: "curve.svg", result.depthChart(title: "What each depth holds (MLP probe)"))]
    if rows.count > 1 { figures.append(.grid(name: "figure.png", images: Tensor.cat(rows.map { $0.to(.cpu) }), columns: rows[0].shape[0], scale: 2)) }
    return ExperimentOutcome(result, figures: figures)
  }

  /// The training and test Shapes sets a classifier was trained on (its class count), or an
  /// error when it was trained on something else.
  static func shapes(of model: any ImageClassifier, path: String) throws -> (train: ShapesDataset, test: ShapesDataset, name: String) {
    guard let name = model.config.dataset, case .shapes = try DatasetSource(name).kind else {
      throw RunError("probing factors needs a classifier trained on Shapes (its factors are known); \(path) was trained on \(model.config.dataset ?? "an unrecorded data set")")
    }
    let source = try DatasetSource(name)
    guard let train = try source.open(split: .train, resolution: model.config.resolution).dataset as? ShapesDataset,
      let test = try source.open(split: .test, resolution: model.config.resolution).dataset as? ShapesDataset
    else { throw RunError("\(name) did not open as the Shapes data set") }
    return (train, test, name)
  }

  /// `images` as `representation` of `model`, `[N, D]` on the CPU, in batches of 250.
  static func encode(_ images: Tensor, _ model: any ImageClassifier, _ representation: Representation) throws -> Tensor {
    try withNoGrad { Tensor.cat(try images.split(size: 250).map { try model.represent($0, as: representation).to(.cpu, dtype: .float32) }) }
  }
}

/// What each representation of a classifier holds of Shapes' factors (R², 1: all of it, 0:
/// nothing), in depth order, with what inverters recover from some of them.
public struct InformationResult: ExperimentResult {
  public var classifier: String
  /// Its weights' digest (`RepresentationCache.weightsDigest`): a study reuses this result only
  /// while the classifier is unchanged.
  public var classifierDigest: String
  public var dataset: String
  public var classCount: Int
  public var count: Int
  public var trainCount: Int
  public var layers: [Layer]
  /// The factor regressor on the originals: the most a reconstruction can show.
  public var ceiling: [String: Estimate]?
  public var regressor: String?

  /// One representation: its vector's length, both probes, and an inverter's recovery if one was scored.
  public struct Layer: Codable {
    public var representation: String
    public var size: Int
    public var linear: [String: Estimate]
    public var mlp: [String: Estimate]
    public var reconstructions: [String: Estimate]?
    public var inverter: String?
  }

  enum CodingKeys: String, CodingKey {
    case classifier, classifierDigest = "classifier_digest", dataset, classCount = "class_count", count, trainCount = "train_count"
    case layers, ceiling, regressor
  }

  public static let kinds = ["information"]
  public var title: String { "What each representation holds (Shapes factors)" }
  public var measures: String {
    "For one classifier, each representation (a feature map average-pooled to at most a 4×4 grid, the pooled features, the logits) is probed for the Shapes factors: a linear and an MLP probe fit on \(trainCount) training images, scored as R² on \(count) held-out ones (1: the factor is fully there, 0: not at all). Where an inverter of a representation was trained, the factor regressor reads the factors off its reconstructions, beside the regressor's ceiling on the originals."
  }

  /// The factors drawn visibly (the others are texture noise by design).
  static var factors: [String] { FactorResult.visibleFactors }

  /// The mean over the visible factors of one probe's R² at `layer`.
  func meanMLP(_ layer: Layer) -> Double {
    let values = Self.factors.compactMap { layer.mlp[$0]?.value }
    return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
  }

  public var summary: String? {
    guard let first = layers.first, let last = layers.last else { return nil }
    var text = String(format: "Mean MLP-probe R² over the visible factors: %.2f at %@, %.2f at %@", meanMLP(first), Representation.label(of: first.representation), meanMLP(last), Representation.label(of: last.representation))
    if let pool = layers.first(where: { $0.representation == "features:pool" }), pool.representation != last.representation {
      text += String(format: "; the pooled features hold %.2f, so the last layer keeps %.0f%% of it", meanMLP(pool), 100 * meanMLP(last) / max(meanMLP(pool), 1e-9))
    }
    return text + "."
  }

  public var lines: [String] {
    func cell(_ value: Estimate?) -> String { value.map { String(format: "%.2f", $0.value) }.map { $0.leftPadded(9) } ?? "—".leftPadded(9) }
    let header = "  factor                " + layers.map { Representation.label(of: $0.representation).leftPadded(9) }.joined()
    var lines = ["\(classifier) (\(dataset)): R² per factor and representation, probes fit on \(trainCount) images, scored on \(count)"]
    for (name, probe) in [("linear probe", \Layer.linear), ("MLP probe", \Layer.mlp)] {
      lines += ["", name + ":", header]
      lines += Self.factors.map { factor in
        "  \(factor.padding(toLength: 22, withPad: " ", startingAt: 0))" + layers.map { cell($0[keyPath: probe][factor]) }.joined()
      }
    }
    let inverted = layers.filter { $0.reconstructions != nil }
    if !inverted.isEmpty {
      lines += ["", "from reconstructions (the regressor; ceiling: on the originals):",
                "  factor                " + inverted.map { Representation.label(of: $0.representation).leftPadded(9) }.joined() + "  ceiling".leftPadded(9)]
      lines += Self.factors.map { factor in
        "  \(factor.padding(toLength: 22, withPad: " ", startingAt: 0))" + inverted.map { cell($0.reconstructions?[factor]) }.joined() + cell(ceiling?[factor])
      }
    }
    return lines
  }

  /// One row per representation and visible factor, for the report's table.
  public struct Row: Codable {
    public var name: String
    public var factor: String
    public var linearProbe: Estimate?
    public var mlpProbe: Estimate?
    public var reconstructions: Estimate?
    public var originals: Estimate?
    enum CodingKeys: String, CodingKey { case name, factor, linearProbe = "linear_probe", mlpProbe = "mlp_probe", reconstructions, originals }
  }

  public var tabulated: any Encodable {
    layers.flatMap { layer in
      Self.factors.map { factor in
        Row(name: layer.representation, factor: factor, linearProbe: layer.linear[factor], mlpProbe: layer.mlp[factor],
            reconstructions: layer.reconstructions?[factor], originals: layer.reconstructions == nil ? nil : ceiling?[factor])
      }
    }
  }

  /// MLP-probe R² per visible factor against depth (one line per factor, x: the representation).
  public func depthChart(title: String) -> LineChart {
    var chart = LineChart(
      title: title, xLabel: "representation (input side → logits)", yLabel: "R² (MLP probe; below 0 drawn at 0)",
      series: Self.factors.map { factor in
        .init(name: factor, points: layers.enumerated().compactMap { index, layer in layer.mlp[factor].map { (Double(index), $0.value) } })
      })
    chart.xTicks = layers.enumerated().map { (Double($0.offset), Representation.label(of: $0.element.representation)) }
    chart.yRange = 0...1
    chart.width = 660
    return chart
  }
}

extension Representation {
  /// The short label (`Representation.label`) of a representation written as text.
  static func label(of text: String) -> String { (try? Representation(parsing: text))?.label ?? text }
}
