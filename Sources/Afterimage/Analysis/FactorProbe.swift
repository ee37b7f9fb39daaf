import Foundation
import Torch

/// Shapes' nuisance factors as regression targets, so "how much of a factor survived" is an R².
///
/// Circular factors become a point on a circle: hue h → (cos 2πh, sin 2πh); rotation θ of a glyph
/// with k-fold symmetry → (cos kθ, sin kθ), because only θ modulo 2π/k is visible (a circle's
/// rotation is invisible and is left out). The other factors are standardised with the
/// training set's mean and standard deviation.
public struct FactorEncoding {
  /// Factor names in report order, and the target columns each one occupies.
  public let factors: [(name: String, columns: Range<Int>)]
  public let width: Int
  let means: [Double]
  let stds: [Double]

  static let circular: Set<String> = ["object_hue", "background_hue", "rotation"]

  /// Learns the scalars' mean and spread from `samples`.
  public init(fitting samples: [ShapeFactors]) {
    let values = samples.map(\.values)
    let count = Double(max(values.count, 1))
    let means: [Double] = (0..<ShapeFactors.names.count).map { i in values.reduce(0.0) { $0 + $1[i] } / count }
    let stds: [Double] = (0..<ShapeFactors.names.count).map { i in
      let variance: Double = values.reduce(0.0) { $0 + ($1[i] - means[i]) * ($1[i] - means[i]) } / count
      return max(1e-6, variance.squareRoot())
    }
    self.init(means: means, stds: stds)
  }

  /// The encoding with these per-factor means and spreads (in `ShapeFactors.names` order), as
  /// a stored regressor recorded them.
  public init(means: [Double], stds: [Double]) {
    var factors: [(String, Range<Int>)] = []
    var column = 0
    for name in ShapeFactors.names {
      let width = Self.circular.contains(name) ? 2 : 1
      factors.append((name, column..<(column + width)))
      column += width
    }
    self.factors = factors
    width = column
    self.means = means
    self.stds = stds
  }

  /// The scalars' means and spreads, in `ShapeFactors.names` order.
  public var statistics: (means: [Double], stds: [Double]) { (means, stds) }

  /// Targets `[N, width]` for factors drawn with glyphs of `symmetries` (k per example).
  public func encode(_ samples: [ShapeFactors], symmetries: [Int]) -> Tensor {
    var rows: [Double] = []
    rows.reserveCapacity(samples.count * width)
    for (factors, k) in zip(samples, symmetries) {
      for (index, name) in ShapeFactors.names.enumerated() {
        let value = factors.values[index]
        switch name {
        case "object_hue", "background_hue":
          rows += [Foundation.cos(2 * .pi * value), Foundation.sin(2 * .pi * value)]
        case "rotation":
          rows += k == 0 ? [0, 0] : [Foundation.cos(Double(k) * value), Foundation.sin(Double(k) * value)]
        default:
          rows.append((value - means[index]) / stds[index])
        }
      }
    }
    return Tensor(rows, shape: [samples.count, width])
  }

  /// R² per factor with its 95% bootstrap interval over the examples (rows resampled
  /// together for every factor), as name → estimate.
  public func rSquaredEstimates(predictions: Tensor, targets: Tensor, rotationMask: Tensor? = nil, resamples: Int = 300) -> [String: Estimate] {
    estimates([predictions], targets: targets, rotationMask: rotationMask, resamples: resamples) { $0[0] }
  }

  /// Recovery efficiency per factor: R² of `predictions` over R² of `reference` (read off the
  /// same examples), with its bootstrap interval, for the factors in `factors`.
  public func efficiencyEstimates(
    predictions: Tensor, reference: Tensor, targets: Tensor, rotationMask: Tensor? = nil, factors names: Set<String>, resamples: Int = 300
  ) -> [String: Estimate] {
    estimates([predictions, reference], targets: targets, rotationMask: rotationMask, only: names, resamples: resamples) { $0[0] / $0[1] }
  }

  /// `combine` of the R² of each of `predictions` per factor, with a bootstrap interval: every
  /// resample draws the same examples for all predictions.
  func estimates(
    _ predictions: [Tensor], targets: Tensor, rotationMask: Tensor?, only names: Set<String>? = nil, resamples: Int,
    combine: @escaping ([Double]) -> Double
  ) -> [String: Estimate] {
    let width = self.width
    let p = predictions.map { $0.to(.cpu, dtype: .float64).scalars(as: Double.self) }
    let t = targets.to(.cpu, dtype: .float64).scalars(as: Double.self)
    let mask = rotationMask.map { $0.to(.cpu, dtype: .float64).scalars(as: Double.self) }
    let count = targets.shape[0]
    var result: [String: Estimate] = [:]
    for (name, columns) in factors where names?.contains(name) ?? true {
      let rows = (0..<count).filter { row in name != "rotation" || (mask?[row] ?? 1) > 0 }
      guard rows.count > 1 else { continue }
      // R² of one prediction set on the drawn rows, the factor's columns pooled.
      func rSquared(_ prediction: [Double], _ draw: [Int]) -> Double {
        var residual = 0.0, total = 0.0
        for column in columns {
          let mean = draw.reduce(0) { $0 + t[rows[$1] * width + column] } / Double(draw.count)
          for index in draw {
            let cell = rows[index] * width + column
            residual += (t[cell] - prediction[cell]) * (t[cell] - prediction[cell])
            total += (t[cell] - mean) * (t[cell] - mean)
          }
        }
        return 1 - residual / max(total, 1e-12)
      }
      result[name] = Bootstrap.estimate(count: rows.count, resamples: resamples) { draw in combine(p.map { rSquared($0, draw) }) }
    }
    return result
  }

  /// R² per factor (columns of a circular factor pooled), as name → value. `mask` rows of 0
  /// leave an example out of one factor (the rotation of rotation-invariant glyphs).
  public func rSquared(predictions: Tensor, targets: Tensor, rotationMask: Tensor? = nil) -> [String: Double] {
    var result: [String: Double] = [:]
    for (name, columns) in factors {
      var p = predictions.narrow(dim: 1, start: columns.lowerBound, length: columns.count).to(.float64)
      var t = targets.narrow(dim: 1, start: columns.lowerBound, length: columns.count).to(.float64)
      if name == "rotation", let mask = rotationMask {
        let keep = mask.to(.bool)
        p = p.maskedSelect(keep.unsqueezed(1).expanded([-1, columns.count])).reshaped([-1, columns.count])
        t = t.maskedSelect(keep.unsqueezed(1).expanded([-1, columns.count])).reshaped([-1, columns.count])
      }
      guard t.shape[0] > 1 else { continue }
      let residual = (t - p).pow(2).sum().item()
      let total = (t - t.mean(dims: [0], keepDim: true)).pow(2).sum().item()
      result[name] = 1 - residual / max(total, 1e-12)
    }
    return result
  }
}

/// Reads Shapes factors off images (a CNN regressor trained on clean images) or off logits: a
/// ridge-regression probe (what the logits hold linearly) and a small MLP probe (what they hold
/// nonlinearly, as an inverter can; the closer of the two to what any decoder of the logits could recover).
public final class FactorProbe {
  public let encoding: FactorEncoding
  public let regressor: FactorRegressor
  let symmetry: (Int) -> Int

  /// The probe reading images with `regressor`, on `dataset`'s glyphs.
  public init(regressor: FactorRegressor, dataset: ShapesDataset) {
    self.regressor = regressor
    encoding = regressor.encoding
    symmetry = { dataset.rotationSymmetry(ofClass: $0) }
  }

  /// Trains the image regressor on `count` clean training images of `dataset` first.
  public convenience init(dataset: ShapesDataset, count: Int = 10_000, epochs: Int = 4, batchSize: Int = 128, seed: UInt64 = 0, progress: Bool = false) throws {
    var options = FactorRegressor.Options()
    (options.trainCount, options.epochs, options.batchSize, options.seed, options.width) = (count, epochs, batchSize, seed, 0.5)
    self.init(regressor: try FactorRegressor.train(on: dataset, options: options, progress: progress), dataset: dataset)
  }

  /// Targets for `factors` of glyph classes `labels`.
  public func targets(_ factors: [ShapeFactors], labels: [Int]) -> Tensor {
    encoding.encode(factors, symmetries: labels.map(symmetry))
  }

  /// Rows whose rotation is visible (glyphs not invariant to every rotation): 1 or 0 per example.
  public func rotationMask(labels: [Int]) -> Tensor {
    Tensor(labels.map { symmetry($0) == 0 ? Float(0) : 1 })
  }

  /// R² per factor, with its interval, of the regressor reading `images` against the true `factors`.
  public func recovery(images: Tensor, factors: [ShapeFactors], labels: [Int]) -> [String: Estimate] {
    encoding.rSquaredEstimates(
      predictions: regressor.predict(images), targets: targets(factors, labels: labels), rotationMask: rotationMask(labels: labels))
  }

  /// R² per factor of a ridge regression from logits, fit on (trainLogits, trainFactors) and
  /// scored on the test ones: how much of each factor is linearly present in the logits.
  public func logitProbe(
    trainLogits: Tensor, trainFactors: [ShapeFactors], trainLabels: [Int], testLogits: Tensor, testFactors: [ShapeFactors],
    testLabels: [Int], ridge: Double = 1e-2
  ) -> [String: Double] {
    let predictions = RepresentationProbe.linearPredictions(
      inputs: trainLogits, targets: targets(trainFactors, labels: trainLabels), predicting: testLogits, ridge: ridge)
    return encoding.rSquared(predictions: predictions, targets: targets(testFactors, labels: testLabels), rotationMask: rotationMask(labels: testLabels))
  }

  /// The MLP probe's predicted targets `[Q, T]` for `testLogits [Q, K]`.
  public func mlpPredictions(
    trainLogits: Tensor, trainFactors: [ShapeFactors], trainLabels: [Int], testLogits: Tensor, epochs: Int = 40, seed: UInt64 = 0
  ) -> Tensor {
    MLPRegression.fit(
      inputs: trainLogits.to(.cpu), targets: targets(trainFactors, labels: trainLabels), predicting: testLogits.to(.cpu), epochs: epochs, seed: seed)
  }

  /// The regressor's predicted targets for `images`.
  public func predictions(_ images: Tensor) -> Tensor { regressor.predict(images) }
}

/// What a representation (`Representation`: logits or a pooled feature map, or any vectors
/// `[N, D]`) holds of Shapes' factors: a ridge-regression probe (what is there linearly) and the
/// MLP probe (what is there nonlinearly, as an inverter could read it), each fit on training
/// rows and scored on held-out rows as R² per factor with a bootstrap interval.
public struct RepresentationProbe {
  public let encoding: FactorEncoding
  /// The rotation symmetry of a glyph class (0: a circle, whose rotation is invisible).
  let symmetry: (Int) -> Int

  public init(encoding: FactorEncoding, symmetry: @escaping (Int) -> Int) {
    self.encoding = encoding
    self.symmetry = symmetry
  }

  /// The probe of `dataset`'s glyphs, its encoding fit on the training factors `fitting`.
  public init(dataset: ShapesDataset, fitting factors: [ShapeFactors]) {
    self.init(encoding: FactorEncoding(fitting: factors), symmetry: { dataset.rotationSymmetry(ofClass: $0) })
  }

  /// The R² of each probe per factor, with its interval.
  public struct Scores {
    public var linear: [String: Estimate]
    public var mlp: [String: Estimate]
  }

  /// Targets `[N, width]` for `factors` of glyph classes `labels`.
  public func targets(_ factors: [ShapeFactors], labels: [Int]) -> Tensor {
    encoding.encode(factors, symmetries: labels.map(symmetry))
  }

  /// 1 for the rows whose rotation is visible, 0 for rotation-invariant glyphs.
  public func rotationMask(labels: [Int]) -> Tensor {
    Tensor(labels.map { symmetry($0) == 0 ? Float(0) : 1 })
  }

  /// Fits both probes on `train [N, D]` (with its factors and classes) and scores them on `test [Q, D]`.
  public func scores(
    train: Tensor, trainFactors: [ShapeFactors], trainLabels: [Int], test: Tensor, testFactors: [ShapeFactors], testLabels: [Int],
    epochs: Int = 40, seed: UInt64 = 0
  ) -> Scores {
    let trainTargets = targets(trainFactors, labels: trainLabels)
    let testTargets = targets(testFactors, labels: testLabels)
    let mask = rotationMask(labels: testLabels)
    let linear = Self.linearPredictions(inputs: train, targets: trainTargets, predicting: test)
    let mlp = MLPRegression.fit(inputs: train.to(.cpu), targets: trainTargets, predicting: test.to(.cpu), epochs: epochs, seed: seed)
    return Scores(
      linear: encoding.rSquaredEstimates(predictions: linear, targets: testTargets, rotationMask: mask),
      mlp: encoding.rSquaredEstimates(predictions: mlp, targets: testTargets, rotationMask: mask))
  }

  /// Ridge regression `inputs [N, D]` → `targets [N, T]`, its predictions `[Q, T]` for
  /// `queries [Q, D]`. Inputs are standardised with the training rows' statistics first, so the
  /// penalty `ridge · N` weighs every input alike, whatever its scale (logits of ±20, pooled
  /// activations of 0.1) and whatever D.
  public static func linearPredictions(inputs: Tensor, targets: Tensor, predicting queries: Tensor, ridge: Double = 1e-2) -> Tensor {
    let x = inputs.to(.cpu, dtype: .float64)
    let mean = x.mean(dims: [0], keepDim: true)
    let std = x.variance(dims: [0], keepDim: true).sqrt() + 1e-6
    func design(_ values: Tensor) -> Tensor {
      let standardized = (values.to(.cpu, dtype: .float64) - mean) / std
      return Tensor.cat([standardized, Tensor.ones([values.shape[0], 1], dtype: .float64)], dim: 1)  // bias column
    }
    let a = design(x)
    let y = targets.to(.cpu, dtype: .float64)
    let gram = a.t.matmul(a) + Tensor.eye(a.shape[1], dtype: .float64) * (ridge * Double(a.shape[0]))
    // Solve (AᵀA + λI) W = AᵀY through the symmetric eigendecomposition (gram is positive definite).
    let (values, vectors) = gram.symmetricEigen()
    let inverse = (vectors / values.unsqueezed(0)).matmul(vectors.t)
    return design(queries).matmul(inverse.matmul(a.t.matmul(y)))
  }
}

/// Nonlinear regression for probes: inputs standardised with the training rows' statistics, two
/// hidden ReLU layers, Adam on the mean squared error. The last tenth of the training rows is
/// held out to choose the epoch (early stopping), so the probe does not score its own overfit.
public enum MLPRegression {
  /// Predictions `[Q, T]` for `queries [Q, D]` of a network fit on `inputs [N, D]` → `targets [N, T]`.
  public static func fit(
    inputs: Tensor, targets: Tensor, predicting queries: Tensor, hidden: Int = 128, epochs: Int = 40, batchSize: Int = 128,
    learningRate: Double = 1e-3, seed: UInt64 = 0
  ) -> Tensor {
    let mean = inputs.to(.float32).mean(dims: [0], keepDim: true)
    let std = inputs.to(.float32).variance(dims: [0], keepDim: true).sqrt() + 1e-6
    func standardized(_ x: Tensor) -> Tensor { (x.to(.float32) - mean) / std }
    let x = standardized(inputs)
    let y = targets.to(.float32)
    let queries = standardized(queries)
    let count = x.shape[0]
    let heldOut = max(1, count / 10)
    let fitting = count - heldOut
    let (fitX, fitY) = (x.narrow(dim: 0, start: 0, length: fitting), y.narrow(dim: 0, start: 0, length: fitting))
    let (heldX, heldY) = (x.narrow(dim: 0, start: fitting, length: heldOut), y.narrow(dim: 0, start: fitting, length: heldOut))

    let generator = Generator(seed: seed)
    let layers = [
      Linear(x.shape[1], hidden, generator: generator), Linear(hidden, hidden, generator: generator),
      Linear(hidden, y.shape[1], generator: generator),
    ]
    func predict(_ input: Tensor) -> Tensor { layers[2](layers[1](layers[0](input).relu()).relu()) }
    let parameters = layers.enumerated().flatMap { index, layer in layer.namedParameters(prefix: "\(index).") }
    let optimizer = Adam(parameters, learningRate: learningRate)

    var bestLoss = Double.infinity
    var best = withNoGrad { predict(queries) }
    for _ in 0..<max(1, epochs) {
      let order = Tensor.randperm(fitting, generator: generator)
      for start in stride(from: 0, to: fitting, by: batchSize) {
        let rows = order.narrow(dim: 0, start: start, length: min(batchSize, fitting - start))
        let loss = Loss.mse(predict(fitX.indexSelect(dim: 0, index: rows)), fitY.indexSelect(dim: 0, index: rows))
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
      }
      let heldLoss = withNoGrad { Loss.mse(predict(heldX), heldY).item() }
      if heldLoss < bestLoss {
        bestLoss = heldLoss
        best = withNoGrad { predict(queries) }
      }
    }
    return best
  }
}
