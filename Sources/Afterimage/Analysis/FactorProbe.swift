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
    var factors: [(String, Range<Int>)] = []
    var column = 0
    for name in ShapeFactors.names {
      let width = Self.circular.contains(name) ? 2 : 1
      factors.append((name, column..<(column + width)))
      column += width
    }
    self.factors = factors
    width = column
    let values = samples.map(\.values)
    means = (0..<ShapeFactors.names.count).map { i in values.map { $0[i] }.reduce(0, +) / Double(max(values.count, 1)) }
    stds = (0..<ShapeFactors.names.count).map { i in
      let mean = values.map { $0[i] }.reduce(0, +) / Double(max(values.count, 1))
      return max(1e-6, (values.map { ($0[i] - mean) * ($0[i] - mean) }.reduce(0, +) / Double(max(values.count, 1))).squareRoot())
    }
  }

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
  let regressor: NetworkClassifier
  let symmetry: (Int) -> Int

  /// Trains the image regressor on `count` clean training images of `dataset`.
  public init(dataset: ShapesDataset, count: Int = 10_000, epochs: Int = 4, batchSize: Int = 128, seed: UInt64 = 0, progress: Bool = false) throws {
    let train = try Subset(dataset, count: min(count, dataset.count))
    let all = try train.batch(at: Array(0..<train.count))
    encoding = FactorEncoding(fitting: all.factors ?? [])
    symmetry = { dataset.rotationSymmetry(ofClass: $0) }
    let targets = encoding.encode(all.factors ?? [], symmetries: all.labels.scalars(as: Int64.self).map { dataset.rotationSymmetry(ofClass: Int($0)) })
    // The regressor is the evaluation architecture with one output per target column.
    let config = ClassifierConfig(
      architecture: .evalnet, width: 0.5, channels: 3, resolution: dataset.resolution,
      classNames: (0..<encoding.width).map { "target \($0)" }, normalization: Normalization(mean: [0.25, 0.25, 0.25], std: [0.2, 0.2, 0.2]))
    regressor = try NetworkClassifier(config: config, generator: Generator(seed: seed))
    let optimizer = Adam(regressor.model.namedParameters(), learningRate: 2e-3)
    let loader = DataLoader(train, batchSize: batchSize, shuffle: true, dropLast: true, seed: seed)
    let total = epochs * loader.batchCount
    let schedule = CosineSchedule(base: 2e-3, totalSteps: total)
    let bar = progress ? ProgressBar(total: total, label: "factor regressor", unit: "step") : nil
    var step = 0
    regressor.train(true)
    for epoch in 0..<epochs {
      try loader.epoch(epoch).forEachBatch { batch in
        optimizer.learningRate = schedule.learningRate(at: step)
        let indices = Tensor(batch.indices.map(Int64.init))
        let loss = Loss.mse(regressor.logits(batch.images), targets.indexSelect(dim: 0, index: indices).to(.float32))
        optimizer.zeroGrad()
        loss.backward()
        optimizer.step()
        step += 1
        bar?.update(step, metrics: ["mse": String(format: "%.3f", loss.item())])
      }
    }
    regressor.train(false)
  }

  /// Targets for `factors` of glyph classes `labels`.
  public func targets(_ factors: [ShapeFactors], labels: [Int]) -> Tensor {
    encoding.encode(factors, symmetries: labels.map(symmetry))
  }

  /// Rows whose rotation is visible (glyphs not invariant to every rotation): 1 or 0 per example.
  public func rotationMask(labels: [Int]) -> Tensor {
    Tensor(labels.map { symmetry($0) == 0 ? Float(0) : 1 })
  }

  /// R² per factor of the regressor reading `images` against the true `factors`.
  public func recovery(images: Tensor, factors: [ShapeFactors], labels: [Int]) -> [String: Double] {
    // The probe is small and fitted on the CPU; images from any device come to it.
    let predictions = withNoGrad { Tensor.cat(images.to(.cpu).split(size: 256).map { regressor.logits($0) }, dim: 0) }
    return encoding.rSquared(predictions: predictions, targets: targets(factors, labels: labels), rotationMask: rotationMask(labels: labels))
  }

  /// R² per factor of a ridge regression from logits, fit on (trainLogits, trainFactors) and
  /// scored on the test ones: how much of each factor is linearly present in the logits.
  public func logitProbe(
    trainLogits: Tensor, trainFactors: [ShapeFactors], trainLabels: [Int], testLogits: Tensor, testFactors: [ShapeFactors],
    testLabels: [Int], ridge: Double = 1e-2
  ) -> [String: Double] {
    func design(_ logits: Tensor) -> Tensor {
      let x = logits.to(.cpu, dtype: .float64)
      return Tensor.cat([x, Tensor.ones([x.shape[0], 1], dtype: .float64)], dim: 1)  // bias column
    }
    let x = design(trainLogits)
    let y = targets(trainFactors, labels: trainLabels).to(.float64)
    let gram = x.t.matmul(x) + Tensor.eye(x.shape[1], dtype: .float64) * (ridge * Double(x.shape[0]))
    // Solve (XᵀX + λI) W = XᵀY through the symmetric eigendecomposition (gram is positive definite).
    let (values, vectors) = gram.symmetricEigen()
    let inverse = (vectors / values.unsqueezed(0)).matmul(vectors.t)
    let weights = inverse.matmul(x.t.matmul(y))
    let predictions = design(testLogits).matmul(weights)
    return encoding.rSquared(predictions: predictions, targets: targets(testFactors, labels: testLabels), rotationMask: rotationMask(labels: testLabels))
  }

  /// R² per factor of a small MLP from the logits (`MLPRegression`), fit on the training logits
  /// and scored on the test ones, like `logitProbe`.
  public func mlpLogitProbe(
    trainLogits: Tensor, trainFactors: [ShapeFactors], trainLabels: [Int], testLogits: Tensor, testFactors: [ShapeFactors],
    testLabels: [Int], epochs: Int = 40, seed: UInt64 = 0
  ) -> [String: Double] {
    let predictions = MLPRegression.fit(
      inputs: trainLogits.to(.cpu), targets: targets(trainFactors, labels: trainLabels), predicting: testLogits.to(.cpu), epochs: epochs, seed: seed)
    return encoding.rSquared(predictions: predictions, targets: targets(testFactors, labels: testLabels), rotationMask: rotationMask(labels: testLabels))
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
