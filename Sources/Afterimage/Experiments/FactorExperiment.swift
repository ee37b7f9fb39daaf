import Foundation
import Torch

/// `analyze factors`: on Shapes, whose nuisance factors are known, R² per factor read off the
/// reconstructions, off the originals (the ceiling), and off the logits by a linear and an MLP
/// probe (what the logits hold, for any inverter).
public struct FactorExperiment: Experiment {
  public static var keepsArrays: Bool { true }
  /// An inverter trained on Shapes.
  public var inverter: String
  /// Held-out images scored.
  public var count = 1000
  /// Clean training images for the factor regressor and the logit probes.
  public var trainCount = 10_000
  /// Epochs of the factor regressor, when one is trained here.
  public var epochs = 4
  /// A trained factor regressor (`analyze factor-regressor`); nil: the shipped one
  /// (`models/eval/shapes-factors`) when it is there, else one trained here on `trainCount` images.
  public var regressor: String?
  /// Reconstructions per image, each from fresh noise, whose readings are averaged: the
  /// inverter's estimate of a factor (docs/SCIENCE.md, "A ruler for a generator that samples").
  public var draws = 8

  public init(inverter: String) { self.inverter = inverter }

  /// The MLP probe's R² above which a factor counts as held by the logits, and its recovery
  /// efficiency is reported.
  public static let presentInLogits = 0.3

  /// The defaults the command line shows.
  public static let defaults = FactorExperiment(inverter: "")

  public var subject: String { inverter }

  public func run(on device: Device) throws -> ExperimentOutcome<FactorResult> {
    let model = try Inverter.load(inverter, device: device)
    let source = try DatasetSource(model.config.dataset)
    guard case .shapes = source.kind,
      let train = try source.open(split: .train, resolution: model.config.resolution).dataset as? ShapesDataset,
      let test = try source.open(split: .test, resolution: model.config.resolution).dataset as? ShapesDataset
    else {
      throw RunError("factor recovery needs the Shapes data set (its factors are known); \(inverter) was trained on \(model.config.dataset)")
    }
    let stored = try FactorRegressor.loadDefault(regressor)
    let probe = try stored.map { FactorProbe(regressor: $0, dataset: train) } ?? FactorProbe(dataset: train, count: trainCount, epochs: epochs, progress: true)
    if let stored, stored.encoding.statistics.means.count != ShapeFactors.names.count || stored.network.config.resolution != model.config.resolution {
      throw RunError("the factor regressor reads \(stored.network.config.resolution) px images and \(model.config.dataset)'s inverter makes \(model.config.resolution) px ones: train a regressor at that resolution with `afterimage analyze factor-regressor --resolution \(model.config.resolution)`")
    }
    let scored = try test.batch(at: Array(0..<min(count, test.count)))
    let labels = scored.labels.scalars(as: Int64.self).map(Int.init)
    // The probes read what the inverter reads: its representation (the logits, or a feature map).
    guard draws >= 1 else { throw RunError("--draws must be at least 1 (8 or more to average a sampling generator's readings)") }
    let logits = Tensor.cat(try scored.images.split(size: 250).map { try model.represent($0) })
    // Draw d of every image: batch i's noise comes from seed d · 1000 + i (draw 0 is the single
    // draw scored before averaging existed: seeds 0, 1, …).
    let drawn = (0..<draws).map { draw in
      Tensor.cat(logits.split(size: 250).enumerated().map { index, part in
        model.reconstruct(representation: part, noise: model.noise(count: part.shape[0], seed: UInt64(draw * 1000 + index)))
      })
    }
    let reconstructions = drawn[0]
    let trainBatch = try train.batch(at: Array(0..<min(trainCount, train.count)))
    let trainLogits = Tensor.cat(try trainBatch.images.split(size: 250).map { try model.represent($0) })
    let trainLabels = trainBatch.labels.scalars(as: Int64.self).map(Int.init)
    let targets = probe.targets(scored.factors!, labels: labels)
    let mask = probe.rotationMask(labels: labels)
    let fromReconstructions = probe.predictions(reconstructions)
    let fromDraws = Tensor.stack(drawn.map { probe.predictions($0) }).mean(dim: 0)  // [N, T]: averaged over draws
    let geometricOriginals = GeometricRuler.read(scored.images)
    let geometricDraws = drawn.map { GeometricRuler.read($0) }
    let fromProbe = probe.mlpPredictions(trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainLabels, testLogits: logits)
    let reconstructionR2 = probe.encoding.rSquaredEstimates(predictions: fromReconstructions, targets: targets, rotationMask: mask)
    let originalR2 = probe.encoding.rSquaredEstimates(predictions: probe.predictions(scored.images), targets: targets, rotationMask: mask)
    let degradedImages = ReconstructionDegradation.strongest.apply(scored.images, generator: Generator(seed: 0), extreme: true)
    let degradedR2 = probe.encoding.rSquaredEstimates(predictions: probe.predictions(degradedImages), targets: targets, rotationMask: mask)
    let probeR2 = probe.encoding.rSquaredEstimates(predictions: fromProbe, targets: targets, rotationMask: mask)
    let held = Set(probeR2.filter { $0.value.value >= Self.presentInLogits }.keys)
    var result = FactorResult(
      reconstructions: reconstructionR2.mapValues(\.value),
      originals: originalR2.mapValues(\.value),
      linearLogitProbe: probe.logitProbe(
        trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainLabels,
        testLogits: logits, testFactors: scored.factors!, testLabels: labels),
      mlpLogitProbe: probeR2.mapValues(\.value),
      intervals: .init(reconstructions: reconstructionR2, originals: originalR2, mlpLogitProbe: probeR2),
      efficiency: probe.encoding.efficiencyEstimates(predictions: fromDraws, reference: fromProbe, targets: targets, rotationMask: mask, factors: held),
      regressor: stored.map { _ in regressor ?? FactorRegressor.shippedFolder } ?? "trained here on \(trainCount) images, \(epochs) epochs",
      storedCeiling: stored?.record.ceiling, representation: model.config.representation.description)
    result.draws = draws
    result.degradedOriginals = degradedR2
    result.regressorDegradation = stored.map { $0.record.options.degradation == nil ? "clean images only" : "degraded images" }
    result.averaged = probe.encoding.rSquaredEstimates(predictions: fromDraws, targets: targets, rotationMask: mask)
    result.singleDrawEfficiency = probe.encoding.efficiencyEstimates(
      predictions: fromReconstructions, reference: fromProbe, targets: targets, rotationMask: mask, factors: held)
    result.geometric = FactorResult.Geometric(
      singleDraw: GeometricRuler.agreement(reconstructions: geometricDraws[0], originals: geometricOriginals),
      averaged: GeometricRuler.agreement(reconstructions: Tensor.stack(geometricDraws).mean(dim: 0), originals: geometricOriginals),
      ceiling: GeometricRuler.ceiling(originals: geometricOriginals, factors: scored.factors!, labels: labels))
    var arrays = ReconstructionArrays(originals: scored.images, reconstructions: Tensor.stack(drawn, dim: 1), representation: logits, labels: scored.labels)
    arrays.factors = scored.factors
    arrays.predictions = [("classifier_originals", try withNoGrad { try model.classifier.logits(scored.images) }.argmax(dim: 1))]
    return ExperimentOutcome(
      result, scores: Self.scores(factors: scored.factors!, targets: targets, averagedPredictions: fromDraws, geometricOriginals: geometricOriginals,
                                  geometricReconstructions: Tensor.stack(geometricDraws).mean(dim: 0)),
      arrays: arrays)
  }

  /// Per image: its true factors (`true_NAME`), the geometric ruler's readings of the original
  /// and of the reconstructions averaged over the draws (`geometric_original_*`,
  /// `geometric_reconstruction_*`), and the regressor's averaged reading's squared error over
  /// the encoded targets (`regressor_squared_error`, in the targets' standard units).
  static func scores(
    factors: [ShapeFactors], targets: Tensor, averagedPredictions: Tensor, geometricOriginals: Tensor, geometricReconstructions: Tensor
  ) -> ScoreTable {
    var table = ScoreTable()
    for (index, name) in ShapeFactors.names.enumerated() { table.add("true_\(name)", factors.map { $0.values[index] }) }
    for (readings, which) in [(geometricOriginals, "original"), (geometricReconstructions, "reconstruction")] {
      let values = readings.to(.cpu, dtype: .float64).contiguous()
      for (column, name) in GeometricRuler.factors.enumerated() {
        table.add("geometric_\(which)_\(name)", values.select(dim: 1, index: column).contiguous().scalars(as: Double.self))
      }
    }
    let error = (averagedPredictions.to(.cpu, dtype: .float64) - targets.to(.cpu, dtype: .float64)).pow(2).mean(dims: [1])
    table.add("regressor_squared_error", error.contiguous().scalars(as: Double.self))
    return table
  }
}

/// R² per factor (`ShapeFactors.names`; 1: fully recovered, 0: nothing), read four ways.
public struct FactorResult: ExperimentResult {
  public var reconstructions: [String: Double]
  /// The same regressor on the originals: the ceiling for the reconstructions.
  public var originals: [String: Double]
  public var linearLogitProbe: [String: Double]
  public var mlpLogitProbe: [String: Double]
  /// 95% bootstrap intervals over the scored images (absent in older files).
  public var intervals: Intervals?
  /// Recovery efficiency: R² from reconstructions over the MLP probe's R² on the same logits,
  /// for each factor the probe finds (R² ≥ 0.3), with its interval. 1: the inverter recovers
  /// all the logits hold of it. From the readings averaged over `draws` reconstructions per
  /// image where `draws` is set; from one draw in older files.
  public var efficiency: [String: Estimate]?
  /// Reconstructions per image whose readings were averaged (nil in older files: one).
  public var draws: Int?
  /// R² of the regressor's readings averaged over the draws: the inverter's estimate of each
  /// factor, as the probe's output is its own (`reconstructions` is one draw's).
  public var averaged: [String: Estimate]?
  /// Recovery efficiency from one draw, as older files reported it.
  public var singleDrawEfficiency: [String: Estimate]?
  /// The ruler that needs no training (`GeometricRuler`): centroid and area.
  public var geometric: Geometric?
  /// The regressor's R² on the originals degraded at every axis's limit
  /// (`ReconstructionDegradation.strongest`): its ceiling for the blurred, greyed and noisy
  /// images reconstructions are (nil in older files).
  public var degradedOriginals: [String: Estimate]?
  /// What the regressor was trained on: "degraded images", or "clean images only" (regressors
  /// made before degradations existed); nil when it was trained here, or in older files.
  public var regressorDegradation: String?

  /// The geometric ruler's R² per factor (`GeometricRuler.factors`): the reconstructions'
  /// readings against the originals', from one draw and averaged over the draws, and the
  /// ruler's ceiling on originals against their known factors.
  public struct Geometric: Codable {
    public var singleDraw: [String: Estimate]
    public var averaged: [String: Estimate]
    public var ceiling: [String: Estimate]
    enum CodingKeys: String, CodingKey { case singleDraw = "single_draw", averaged, ceiling }
  }

  /// The factors on which the two rulers, both averaged over the draws, disagree by more than
  /// their intervals: the intervals do not overlap. A disagreement says one ruler misreads
  /// reconstructions; neither number should then be trusted alone.
  public var rulersDisagree: [String] {
    guard let averaged, let geometric else { return [] }
    return GeometricRuler.factors.filter { factor in
      guard let a = averaged[factor], let b = geometric.averaged[factor], a.hasInterval, b.hasInterval else { return false }
      return a.low > b.high || b.low > a.high
    }
  }
  /// Which regressor read the factors: a folder, or how it was trained here.
  public var regressor: String?
  /// The regressor's own ceiling as measured when it was trained (its factors.json).
  public var storedCeiling: [String: Estimate]?
  /// What the inverter and the probes read (`logits`, or `features:NAME`; nil in older files: logits).
  public var representation: String?

  public struct Intervals: Codable {
    public var reconstructions: [String: Estimate]
    public var originals: [String: Estimate]
    public var mlpLogitProbe: [String: Estimate]
    enum CodingKeys: String, CodingKey { case reconstructions, originals, mlpLogitProbe = "logit_probe_mlp" }
  }

  enum CodingKeys: String, CodingKey {
    case reconstructions, originals, linearLogitProbe = "logit_probe", mlpLogitProbe = "logit_probe_mlp"
    case intervals, efficiency, regressor, storedCeiling = "stored_ceiling", representation
    case draws, averaged, singleDrawEfficiency = "single_draw_efficiency", geometric
    case degradedOriginals = "degraded_originals", regressorDegradation = "regressor_trained_on"
  }

  /// The factors a clean image shows (the ruler must reach them): all but the ones drawn as
  /// noise or near-invisible by design (texture noise, object saturation).
  public static let visibleFactors = ["object_hue", "object_brightness", "size", "centre_x", "centre_y", "rotation", "background_hue", "background_brightness"]

  public static let kinds = ["factors"]
  public var title: String { "What survives in the logits (Shapes factors)" }
  public var measures: String {
    "Every Shapes image was drawn with known nuisance factors; a regressor trained on images degraded as reconstructions are (blur, lost contrast and colour, noise) reads each factor off the reconstructions (R² 1: fully recovered, 0: lost), beside the same regressor on the originals, clean and degraded (the ceilings), a geometric ruler that needs no training, and two probes on the logits themselves: linear, and a small MLP, which also reads what the logits hold nonlinearly, as an inverter can."
  }

  public var summary: String? {
    let best = reconstructions.max { $0.value < $1.value }
    func present(_ probe: [String: Double]) -> String {
      let names = probe.filter { $0.value > 0.3 }.keys.sorted()
      return names.isEmpty ? "none" : names.joined(separator: ", ")
    }
    return "Best-recovered factor: \(best?.key ?? "none") (R² \(String(format: "%.2f", best?.value ?? 0))). Linearly present in the logits (R² > 0.3): \(present(linearLogitProbe)). Present to an MLP probe: \(present(mlpLogitProbe))."
  }

  public var lines: [String] {
    func cell(_ value: Double?, _ interval: Estimate?) -> String {
      guard let value else { return "n/a".leftPadded(15) }
      guard let interval, interval.low.isFinite else { return String(format: "%.3f", value).leftPadded(15) }
      return String(format: "%.3f±%.3f", value, max(value - interval.low, interval.high - value)).leftPadded(15)
    }
    let read = representation.map { $0 == "logits" ? "" : "; the probes read \($0), which the inverter inverts" } ?? ""
    let averagedOver = draws.map { "averaged over \($0) draws" } ?? "one draw"
    let trainedOn = regressorDegradation.map { ", trained on \($0)" } ?? ""
    var lines = ["R² per factor (1: fully recovered, 0: nothing), ± the 95% interval; efficiency = reconstructions (\(averagedOver)) / MLP probe (regressor: \(regressor ?? "trained here")\(trainedOn)\(read)):",
                 "  factor                   one draw        \((draws.map { "\($0) draws" } ?? "averaged").padding(toLength: 16, withPad: " ", startingAt: 0))originals(ceiling)  degraded(ceiling)   linear probe       MLP probe      efficiency"]
    lines += ShapeFactors.names.map { name in
      "  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))"
        + cell(reconstructions[name], intervals?.reconstructions[name]) + cell(averaged?[name]?.value, averaged?[name])
        + cell(originals[name], intervals?.originals[name]) + cell(degradedOriginals?[name]?.value, degradedOriginals?[name])
        + cell(linearLogitProbe[name], nil) + cell(mlpLogitProbe[name], intervals?.mlpLogitProbe[name])
        + (efficiency?[name].map { cell($0.value, $0) } ?? "—".leftPadded(15))
    }
    if let geometric {
      lines.append("The geometric ruler (foreground centroid and √area; no training), R² of the reconstructions' readings against the originals':")
      lines.append("  factor                   one draw        \((draws.map { "\($0) draws" } ?? "averaged").padding(toLength: 16, withPad: " ", startingAt: 0))ceiling (originals vs truth)")
      lines += GeometricRuler.factors.map { name in
        "  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))"
          + cell(geometric.singleDraw[name]?.value, geometric.singleDraw[name]) + cell(geometric.averaged[name]?.value, geometric.averaged[name])
          + cell(geometric.ceiling[name]?.value, geometric.ceiling[name])
      }
      let disagreeing = rulersDisagree
      lines.append(disagreeing.isEmpty
        ? "  The two rulers agree within their intervals on \(GeometricRuler.factors.joined(separator: ", "))."
        : "  The two rulers disagree beyond their intervals on \(disagreeing.joined(separator: ", ")): one of them misreads these reconstructions.")
    }
    return lines
  }

  /// One row per factor for the report's table.
  public struct Row: Codable {
    public var factor: String
    public var reconstructions: Double?
    public var reconstructionsInterval: Estimate?
    public var originals: Double?
    public var originalsInterval: Estimate?
    public var linearProbe: Double?
    public var mlpProbe: Double?
    public var mlpProbeInterval: Estimate?
    public var efficiency: Double?
    public var efficiencyInterval: Estimate?
    /// The regressor's R² averaged over draws, and the geometric ruler's (its factors only).
    public var averaged: Estimate?
    public var geometric: Estimate?
    /// The regressor on degraded originals: its ceiling for reconstructions.
    public var degradedOriginals: Estimate?
    enum CodingKeys: String, CodingKey {
      case factor, reconstructions, reconstructionsInterval = "reconstructions_interval", originals, originalsInterval = "originals_interval"
      case linearProbe = "logit_probe", mlpProbe = "logit_probe_mlp", mlpProbeInterval = "logit_probe_mlp_interval", efficiency
      case efficiencyInterval = "efficiency_interval", averaged, geometric, degradedOriginals = "degraded_originals"
    }
  }

  public var tabulated: any Encodable {
    ShapeFactors.names.map { name in
      Row(factor: name, reconstructions: reconstructions[name], reconstructionsInterval: intervals?.reconstructions[name],
          originals: originals[name], originalsInterval: intervals?.originals[name], linearProbe: linearLogitProbe[name],
          mlpProbe: mlpLogitProbe[name], mlpProbeInterval: intervals?.mlpLogitProbe[name], efficiency: efficiency?[name]?.value,
          efficiencyInterval: efficiency?[name], averaged: averaged?[name], geometric: geometric?.averaged[name],
          degradedOriginals: degradedOriginals?[name])
    }
  }
}
