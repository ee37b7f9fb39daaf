import Foundation
import Torch

/// `analyze factors`: on Shapes, whose nuisance factors are known, R² per factor read off the
/// reconstructions, off the originals (the ceiling), and off the logits by a linear and an MLP
/// probe (what the logits hold, for any inverter).
public struct FactorExperiment: Experiment {
  /// An inverter trained on Shapes.
  public var inverter: String
  /// Held-out images scored.
  public var count = 1000
  /// Clean training images for the factor regressor and the logit probes.
  public var trainCount = 10_000
  /// Epochs of the factor regressor.
  public var epochs = 4

  public init(inverter: String) { self.inverter = inverter }

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
    let probe = try FactorProbe(dataset: train, count: trainCount, epochs: epochs, progress: true)
    let scored = try test.batch(at: Array(0..<min(count, test.count)))
    let labels = scored.labels.scalars(as: Int64.self).map(Int.init)
    let logits = try withNoGrad { Tensor.cat(try scored.images.split(size: 250).map { try model.classifier.logits($0) }) }
    let reconstructions = Tensor.cat(logits.split(size: 250).enumerated().map { index, part in
      model.reconstruct(logits: part, noise: model.noise(count: part.shape[0], seed: UInt64(index)))
    })
    let trainBatch = try train.batch(at: Array(0..<min(trainCount, train.count)))
    let trainLogits = try withNoGrad { Tensor.cat(try trainBatch.images.split(size: 250).map { try model.classifier.logits($0) }) }
    let trainLabels = trainBatch.labels.scalars(as: Int64.self).map(Int.init)
    let result = FactorResult(
      reconstructions: probe.recovery(images: reconstructions, factors: scored.factors!, labels: labels),
      originals: probe.recovery(images: scored.images, factors: scored.factors!, labels: labels),
      linearLogitProbe: probe.logitProbe(
        trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainLabels,
        testLogits: logits, testFactors: scored.factors!, testLabels: labels),
      mlpLogitProbe: probe.mlpLogitProbe(
        trainLogits: trainLogits, trainFactors: trainBatch.factors!, trainLabels: trainLabels,
        testLogits: logits, testFactors: scored.factors!, testLabels: labels))
    return ExperimentOutcome(result)
  }
}

/// R² per factor (`ShapeFactors.names`; 1: fully recovered, 0: nothing), read four ways.
public struct FactorResult: ExperimentResult {
  public var reconstructions: [String: Double]
  /// The same regressor on the originals: the ceiling for the reconstructions.
  public var originals: [String: Double]
  public var linearLogitProbe: [String: Double]
  public var mlpLogitProbe: [String: Double]

  enum CodingKeys: String, CodingKey {
    case reconstructions, originals, linearLogitProbe = "logit_probe", mlpLogitProbe = "logit_probe_mlp"
  }

  public var kind: String { "factors" }
  public var title: String { "What survives in the logits (Shapes factors)" }
  public var measures: String {
    "Every Shapes image was drawn with known nuisance factors; a regressor trained on clean images reads each factor off the reconstructions (R² 1: fully recovered, 0: lost), beside the same regressor on the originals (the ceiling) and two probes on the logits themselves: linear, and a small MLP, which also reads what the logits hold nonlinearly, as an inverter can."
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
    ["R² per factor (1: fully recovered, 0: nothing):", "  factor                  reconstructions  originals  logit probe: linear      MLP"]
      + ShapeFactors.names.map { name in
        let row = [reconstructions, originals, linearLogitProbe, mlpLogitProbe].map { $0[name].map { String(format: "%8.3f", $0) } ?? "     n/a" }
        return "  \(name.padding(toLength: 22, withPad: " ", startingAt: 0))  \(row[0])         \(row[1])           \(row[2]) \(row[3])"
      }
  }
}
