import Foundation

/// The weight of a linear, convolutional or embedding layer, which may be spectrally
/// normalised. It holds its layer's state under the layer's own names (a `ModulePart`, see
/// Sources/Torch/NN/ModuleState.swift): plain, the weight is `weight`; normalised, spectral norm
/// owns it as `weight_orig` beside `weight_u` and `weight_v`, as PyTorch's `spectral_norm` does.
public final class LayerWeight: ModulePart {
  /// The weight as trained without spectral norm (`weight`); nil with it.
  @Parameter private var plainWeight: Tensor?
  /// Spectral normalisation, when enabled: it owns the weight then (`weight_orig`, `weight_u`,
  /// `weight_v`).
  @Part public private(set) var spectralNormalization: SpectralNorm?

  /// Keeps `weight` as the layer's `weight`, or hands it to spectral normalisation over its
  /// output-feature dimension `outputDim`, which draws `weight_u` and `weight_v` from `generator`.
  init(_ weight: Tensor, spectralNorm: Bool, outputDim: Int = 0, generator: Generator?) {
    _plainWeight = Parameter(wrappedValue: spectralNorm ? nil : weight, "weight")
    spectralNormalization =
      spectralNorm ? SpectralNorm(weight: weight, dim: outputDim, generator: generator) : nil
  }

  /// A weight of `shape` and a bias `[biasSize]` (none for nil), drawn uniformly in ±1/√fanIn as
  /// PyTorch's default initialisation does, weight first; spectral norm's vectors are drawn
  /// after both, the order PyTorch draws them in.
  static func pytorchDefault(
    shape: [Int], fanIn: Int, biasSize: Int?, spectralNorm: Bool, outputDim: Int = 0,
    generator: Generator?
  ) -> (weight: LayerWeight, bias: Tensor?) {
    let weight = Tensor.empty(shape)
    let bias = biasSize.map { Tensor.empty([$0]) }
    Init.pytorchDefault(weight: weight, bias: bias, fanIn: fanIn, generator: generator)
    let layerWeight = LayerWeight(weight, spectralNorm: spectralNorm, outputDim: outputDim, generator: generator)
    return (layerWeight, bias)
  }

  /// The trained weight: `weight`, or `weight_orig` under spectral norm.
  var trained: Tensor { spectralNormalization?.weightOriginal ?? plainWeight! }

  /// The weight applied: `weight_orig / σ` under spectral norm (refining σ first in training),
  /// else the trained weight.
  func applied(training: Bool) -> Tensor {
    spectralNormalization?.normalizedWeight(training: training) ?? trained
  }
}

/// A layer whose weight is a `LayerWeight` (`Linear`, `Conv2d`, `ConvTranspose2d`, `Embedding`).
public protocol WeightedLayer: Module {
  var layerWeight: LayerWeight { get }
}

extension WeightedLayer {
  /// The trained weight: `weight`, or `weight_orig` under spectral norm.
  public var weight: Tensor { layerWeight.trained }
  /// The weight actually applied (normalised under spectral norm).
  public var effectiveWeight: Tensor { layerWeight.applied(training: isTraining) }
  /// Spectral normalisation, when enabled.
  public var spectralNormalization: SpectralNorm? { layerWeight.spectralNormalization }
}

/// `y = x Wᵀ + b`; weight `[out, in]`. With `spectralNorm`, W is `weight_orig / σ`.
public final class Linear: Module, Layer, WeightedLayer {
  /// `weight` `[out, in]`, or `weight_orig`, `weight_u` and `weight_v` under spectral norm.
  @Part public private(set) var layerWeight: LayerWeight
  @Parameter public private(set) var bias: Tensor?

  public init(
    _ inputSize: Int, _ outputSize: Int, bias hasBias: Bool = true, spectralNorm: Bool = false,
    generator: Generator? = nil
  ) {
    let drawn = LayerWeight.pytorchDefault(
      shape: [outputSize, inputSize], fanIn: inputSize, biasSize: hasBias ? outputSize : nil,
      spectralNorm: spectralNorm, generator: generator)
    layerWeight = drawn.weight
    bias = drawn.bias
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    input.linear(weight: effectiveWeight, bias: bias)
  }
}

/// 2-D convolution with a square kernel; weight `[out, in / groups, k, k]`.
public final class Conv2d: Module, Layer, WeightedLayer {
  /// `weight` `[out, in / groups, k, k]`, or `weight_orig`, `weight_u` and `weight_v` under
  /// spectral norm.
  @Part public private(set) var layerWeight: LayerWeight
  @Parameter public private(set) var bias: Tensor?
  public let stride: Int
  public let padding: Int
  public let dilation: Int
  public let groups: Int

  public init(
    _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
    dilation: Int = 1, groups: Int = 1, bias hasBias: Bool = true, spectralNorm: Bool = false,
    generator: Generator? = nil
  ) {
    precondition(inputChannels % groups == 0, "Conv2d: \(inputChannels) channels do not split into \(groups) groups")
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.groups = groups
    let drawn = LayerWeight.pytorchDefault(
      shape: [outputChannels, inputChannels / groups, kernelSize, kernelSize],
      fanIn: inputChannels / groups * kernelSize * kernelSize, biasSize: hasBias ? outputChannels : nil,
      spectralNorm: spectralNorm, generator: generator)
    layerWeight = drawn.weight
    bias = drawn.bias
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    input.conv2d(
      weight: effectiveWeight, bias: bias, stride: stride, padding: padding, dilation: dilation,
      groups: groups)
  }
}

/// 2-D transposed convolution; weight `[in, out / groups, k, k]`.
public final class ConvTranspose2d: Module, Layer, WeightedLayer {
  /// `weight` `[in, out / groups, k, k]`, or `weight_orig`, `weight_u` and `weight_v` under
  /// spectral norm.
  @Part public private(set) var layerWeight: LayerWeight
  @Parameter public private(set) var bias: Tensor?
  public let stride: Int
  public let padding: Int
  public let outputPadding: Int
  public let groups: Int

  public init(
    _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
    outputPadding: Int = 0, groups: Int = 1, bias hasBias: Bool = true, spectralNorm: Bool = false,
    generator: Generator? = nil
  ) {
    self.stride = stride
    self.padding = padding
    self.outputPadding = outputPadding
    self.groups = groups
    // PyTorch computes fan-in from the weight's dim 1 (out / groups · k · k), and spectral norm
    // normalises over dim 1 too: a transposed convolution's output features.
    let drawn = LayerWeight.pytorchDefault(
      shape: [inputChannels, outputChannels / groups, kernelSize, kernelSize],
      fanIn: outputChannels / groups * kernelSize * kernelSize, biasSize: hasBias ? outputChannels : nil,
      spectralNorm: spectralNorm, outputDim: 1, generator: generator)
    layerWeight = drawn.weight
    bias = drawn.bias
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    input.convTranspose2d(
      weight: effectiveWeight, bias: bias, stride: stride, padding: padding,
      outputPadding: outputPadding, groups: groups)
  }
}

/// Batch normalisation over `[N, C, H, W]` with running statistics for evaluation.
public final class BatchNorm2d: Module, Layer {
  @Parameter public private(set) var weight: Tensor?
  @Parameter public private(set) var bias: Tensor?
  @Buffer public private(set) var runningMean: Tensor
  @Buffer public private(set) var runningVar: Tensor
  @Buffer public private(set) var batchesTracked: Tensor
  public let momentum: Double
  public let eps: Double
  /// Batch statistics per group of `B / statisticsGroups` consecutive examples in training (1:
  /// the whole batch). With N groups one process normalises a batch exactly as N data-parallel
  /// ranks with per-rank statistics do (`Module.setBatchNormGroups`), and the running
  /// statistics take one update with the groups' mean statistics, as the ranks' running
  /// statistics averaged after each step (`ProcessGroup.averageBuffers`) do.
  public var statisticsGroups = 1

  public init(_ channels: Int, momentum: Double = 0.1, eps: Double = 1e-5, affine: Bool = true) {
    self.momentum = momentum
    self.eps = eps
    weight = affine ? Tensor.ones([channels]) : nil
    bias = affine ? Tensor.zeros([channels]) : nil
    _runningMean = Buffer(wrappedValue: Tensor.zeros([channels]), "running_mean")
    _runningVar = Buffer(wrappedValue: Tensor.ones([channels]), "running_var")
    _batchesTracked = Buffer(wrappedValue: Tensor.zeros([], dtype: .int64), "num_batches_tracked")
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    if isTraining { withNoGrad { batchesTracked.addInPlace(1) } }
    let batch = input.shape[0]
    guard isTraining, statisticsGroups > 1 else { return normalise(input) }
    precondition(batch % statisticsGroups == 0, "BatchNorm2d: a batch of \(batch) does not split into \(statisticsGroups) groups")
    let groups = statisticsGroupsOf(input)
    let output = Tensor.cat(groups.map {
      $0.batchNorm(weight: weight, bias: bias, runningMean: nil, runningVar: nil, training: true, momentum: momentum, eps: eps)
    }, dim: 0)
    updateRunningStatistics(groups: groups)
    return output
  }

  /// The batch cut into `statisticsGroups` groups of consecutive examples.
  private func statisticsGroupsOf(_ tensor: Tensor) -> [Tensor] {
    let batch = tensor.shape[0]
    precondition(batch % statisticsGroups == 0, "BatchNorm2d: a batch of \(batch) does not split into \(statisticsGroups) groups")
    let size = batch / statisticsGroups
    return (0..<statisticsGroups).map { tensor.narrow(dim: 0, start: $0 * size, length: size) }
  }

  /// One update of the running statistics with the groups' mean statistics, as the ranks'
  /// running statistics averaged after each step.
  private func updateRunningStatistics(groups: [Tensor]) {
    withNoGrad {
      let dims = [0] + Array(2..<groups[0].rank)  // all but the channels
      // In float32 whatever the input's precision, as batch_norm accumulates.
      let mean = Tensor.stack(groups.map { $0.to(.float32).mean(dims: dims) }).mean(dims: [0])  // [C]
      let variance = Tensor.stack(groups.map { $0.to(.float32).variance(dims: dims) }).mean(dims: [0])  // unbiased, as batch_norm's update
      runningMean.copy(from: runningMean * (1 - momentum) + mean.to(runningMean.dtype) * momentum)
      runningVar.copy(from: runningVar * (1 - momentum) + variance.to(runningVar.dtype) * momentum)
    }
  }

  /// Whether `relu(_:scale:shift:plus:)` runs the fused CPU kernel (`Tensor.batchNormRelu`) where
  /// it can; false composes aten's ops, the same arithmetic up to float rounding (the tests
  /// compare them).
  public var fused = true

  /// `relu(self(input)·scale + shift + residual)`, the batch norm, its affine map or a
  /// conditional one, a residual block's shortcut and the ReLU, as one CPU kernel with its own
  /// backward (`Tensor.batchNormRelu`). `scale` and `shift` (`[N, C]`, per sample) are for a
  /// batch norm without its own weight and bias (BigGAN's conditional batch norm); nil uses the
  /// layer's (or 1 and 0). `residual` has the input's shape. With `statisticsGroups` in training
  /// the kernel runs on each group, as each data-parallel rank runs it on its share of the batch.
  /// Where the kernel does not run (off the CPU, half precision) aten's ops compose the same thing.
  public func relu(_ input: Tensor, scale: Tensor? = nil, shift: Tensor? = nil, plus residual: Tensor? = nil) -> Tensor {
    precondition((scale == nil || weight == nil) && (shift == nil || bias == nil), "BatchNorm2d.relu: a scale or shift given to an affine batch norm")
    if fused && input.supportsFusedKernels {
      if isTraining { withNoGrad { batchesTracked.addInPlace(1) } }
      let (scale, shift) = (scale ?? weight, shift ?? bias)
      guard isTraining, statisticsGroups > 1 else {
        return input.batchNormRelu(
          scale: scale, shift: shift, residual: residual, runningMean: runningMean, runningVar: runningVar, training: isTraining,
          momentum: momentum, eps: eps)
      }
      // Per group, without running statistics, which then take one update for all the groups.
      let groups = statisticsGroupsOf(input)
      func perGroup(_ tensor: Tensor?) -> [Tensor?] {  // a per-channel [C] is every group's; [N, …] is cut
        guard let tensor, tensor.rank > 1 else { return Array(repeating: tensor, count: statisticsGroups) }
        return statisticsGroupsOf(tensor)
      }
      let (scales, shifts, residuals) = (perGroup(scale), perGroup(shift), perGroup(residual))
      let output = Tensor.cat(groups.indices.map {
        groups[$0].batchNormRelu(
          scale: scales[$0], shift: shifts[$0], residual: residuals[$0], runningMean: nil, runningVar: nil, training: true,
          momentum: momentum, eps: eps)
      }, dim: 0)
      updateRunningStatistics(groups: groups)
      return output
    }
    var h = self(input)
    let perSample = [input.shape[0], input.shape[1]] + Array(repeating: 1, count: input.rank - 2)  // [N, C, 1, 1]
    if let scale { h = h * scale.view(perSample) }
    if let shift { h = h + shift.view(perSample) }
    if let residual { h = h + residual }
    return h.relu()
  }

  private func normalise(_ input: Tensor) -> Tensor {
    input.batchNorm(
      weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
      training: isTraining, momentum: momentum, eps: eps)
  }
}

extension Module {
  /// Whether this module's batch norms and attention layers run the fused CPU kernels
  /// (`BatchNorm2d.fused`, `SelfAttention.fused`; on by default): off, they compose aten's ops,
  /// the same arithmetic up to float rounding, to compare or to rule the kernels out.
  public func setFusedKernels(_ on: Bool) {
    for (_, module) in namedModules() {
      (module as? BatchNorm2d)?.fused = on
      (module as? SelfAttention)?.fused = on
    }
  }

  /// Sets every batch norm's `statisticsGroups` in this module's tree.
  public func setBatchNormGroups(_ groups: Int) {
    for (_, module) in namedModules() { (module as? BatchNorm2d)?.statisticsGroups = groups }
  }
}

/// Group normalisation: channels in `groups` groups, normalised per sample.
public final class GroupNorm: Module, Layer {
  public let groups: Int
  public let eps: Double
  @Parameter public private(set) var weight: Tensor?
  @Parameter public private(set) var bias: Tensor?

  public init(groups: Int, channels: Int, eps: Double = 1e-5, affine: Bool = true) {
    precondition(channels % groups == 0, "GroupNorm: \(channels) channels do not split into \(groups) groups")
    self.groups = groups
    self.eps = eps
    weight = affine ? Tensor.ones([channels]) : nil
    bias = affine ? Tensor.zeros([channels]) : nil
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    input.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps)
  }
}

/// Layer normalisation over the trailing `normalizedShape`.
public final class LayerNorm: Module, Layer {
  public let normalizedShape: [Int]
  public let eps: Double
  @Parameter public private(set) var weight: Tensor?
  @Parameter public private(set) var bias: Tensor?

  public init(_ normalizedShape: [Int], eps: Double = 1e-5, affine: Bool = true) {
    self.normalizedShape = normalizedShape
    self.eps = eps
    weight = affine ? Tensor.ones(normalizedShape) : nil
    bias = affine ? Tensor.zeros(normalizedShape) : nil
    super.init()
  }

  public func callAsFunction(_ input: Tensor) -> Tensor {
    input.layerNorm(normalizedShape: normalizedShape, weight: weight, bias: bias, eps: eps)
  }
}

/// A lookup table `[count, dimension]` indexed by int64 ids; N(0, 1) initialised as in PyTorch.
public final class Embedding: Module, WeightedLayer {
  /// The table `weight` `[count, dimension]`, or `weight_orig`, `weight_u` and `weight_v` under
  /// spectral norm.
  @Part public private(set) var layerWeight: LayerWeight

  public init(count: Int, dimension: Int, spectralNorm: Bool = false, generator: Generator? = nil) {
    let table = Tensor.randn([count, dimension], generator: generator)
    layerWeight = LayerWeight(table, spectralNorm: spectralNorm, generator: generator)
    super.init()
  }

  /// Rows for `indices` (any shape of int64), giving `indices.shape + [dimension]`.
  public func callAsFunction(_ indices: Tensor) -> Tensor { effectiveWeight.embedding(indices) }
}

/// SAGAN self-attention (as in BigGAN): 1×1 spectrally normalised projections θ, φ, g, o, keys
/// and values pooled 2×, and a learned gate γ that starts at 0 so the block starts as identity.
public final class SelfAttention: Module, Layer {
  @Child public private(set) var theta: Conv2d
  @Child public private(set) var phi: Conv2d
  @Child public private(set) var g: Conv2d
  @Child public private(set) var o: Conv2d
  /// The gate γ `[]`, 0 at first.
  @Parameter public private(set) var gamma: Tensor
  let channels: Int
  /// Whether the CPU runs the attention as one fused kernel (`Tensor.fusedAttention`) where it
  /// pays; false runs the same arithmetic as aten's batched products and softmax (the tests
  /// compare them).
  public var fused = true
  /// The fewest attention weights per image (HW·HW/4) for which the fused kernel runs. Below,
  /// the weights fit in the caches and aten's ops are as fast: in the 32×32 inverter step
  /// (attention at 16×16, 16,384 weights per image) aten's took 16 ms and the kernel 19 ms; in
  /// the 64×64 step (at 32×32, 262,144 per image) aten's took about 580 ms and the kernel 246 ms
  /// (`benchmarks/profile.py` on both steps' traces).
  public static let fusedMinimumWeights = 65_536

  public init(channels: Int, spectralNorm: Bool = true, generator: Generator? = nil) {
    precondition(channels >= 8, "SelfAttention needs at least 8 channels, got \(channels)")
    self.channels = channels
    theta = Conv2d(channels, channels / 8, kernelSize: 1, bias: false, spectralNorm: spectralNorm, generator: generator)
    phi = Conv2d(channels, channels / 8, kernelSize: 1, bias: false, spectralNorm: spectralNorm, generator: generator)
    g = Conv2d(channels, channels / 2, kernelSize: 1, bias: false, spectralNorm: spectralNorm, generator: generator)
    o = Conv2d(channels / 2, channels, kernelSize: 1, bias: false, spectralNorm: spectralNorm, generator: generator)
    gamma = Tensor.zeros([])
    super.init()
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    let shape = x.shape  // [B, C, H, W]
    let (batch, height, width) = (shape[0], shape[2], shape[3])
    let positions = height * width
    let queries = theta(x).view([batch, channels / 8, positions])  // [B, C/8, HW]
    let keys = phi(x).maxPool2d(kernel: 2).view([batch, channels / 8, positions / 4])  // [B, C/8, HW/4]
    let values = g(x).maxPool2d(kernel: 2).view([batch, channels / 2, positions / 4])  // [B, C/2, HW/4]
    let attended: Tensor  // [B, C/2, HW]
    if fused && positions * (positions / 4) >= Self.fusedMinimumWeights && x.supportsFusedKernels {
      // One kernel, without the [B, HW, HW/4] weights in memory (Tensor.fusedAttention).
      attended = Tensor.fusedAttention(queries: queries.transposed(1, 2), keys: keys, values: values).transposed(1, 2)
    } else {
      let attention = queries.transposed(1, 2).matmul(keys).softmax(dim: -1)  // [B, HW, HW/4]
      attended = values.matmul(attention.transposed(1, 2))
    }
    let output = o(attended.view([batch, channels / 2, height, width]))  // [B, C, H, W]
    return x + gamma * output
  }
}
