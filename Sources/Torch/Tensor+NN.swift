import CTorch

/// How a loss combines per-element values.
public enum Reduction: Int32, Sendable {
  case none = 0, mean = 1, sum = 2
}

/// What `affineWarped` samples outside the image.
public enum GridPadding: Int32, Sendable {
  case zeros = 0, border, reflection
}

/// How `padded` fills the border.
public enum PaddingMode: Int32, Sendable {
  case constant = 0, reflect, replicate, circular
}

/// The functional neural-network operations (PyTorch's `torch.nn.functional`), on image
/// batches laid out `[N, C, H, W]`.
extension Tensor {
  /// `x @ weight.T + bias`; weight is `[out, in]`.
  public func linear(weight: Tensor, bias: Tensor? = nil) -> Tensor {
    Tensor(handle: checked(ct_linear(handle, weight.handle, bias?.handle), "linear"))
  }

  /// 2-D convolution; weight is `[out, in / groups, kH, kW]`.
  public func conv2d(
    weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
    groups: Int = 1
  ) -> Tensor {
    if stride > 1, padding == 0, Workarounds.stridedPointwiseConvolution, isStridedPointwiseBugShape(weight) {
      // oneDNN bug 6035 (Workarounds.stridedPointwiseConvolution): take every stride-th pixel,
      // [N, C, H, W] → [N, C, ⌈H/s⌉, ⌈W/s⌉], then convolve at stride 1; the same arithmetic.
      let sampled = slice(dim: -2, 0..<shape[shape.count - 2], step: stride)
        .slice(dim: -1, 0..<shape[shape.count - 1], step: stride)
      return sampled.conv2d(weight: weight, bias: bias, stride: 1, padding: 0, dilation: dilation, groups: groups)
    }
    let s: [Int64] = [Int64(stride), Int64(stride)]
    let p: [Int64] = [Int64(padding), Int64(padding)]
    let d: [Int64] = [Int64(dilation), Int64(dilation)]
    return Tensor(
      handle: checked(ct_conv2d(handle, weight.handle, bias?.handle, s, p, d, Int64(groups)), "conv2d"))
  }

  /// A CPU 1×1 convolution with fewer input channels per group than oneDNN's AVX2 block.
  private func isStridedPointwiseBugShape(_ weight: Tensor) -> Bool {
    let kernel = weight.shape  // [out, in / groups, kH, kW]
    return kernel.count == 4 && kernel[2] == 1 && kernel[3] == 1
      && kernel[1] < Workarounds.stridedPointwiseChannelLimit && device == .cpu
  }

  /// 2-D transposed convolution; weight is `[in, out / groups, kH, kW]`.
  public func convTranspose2d(
    weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
    groups: Int = 1, dilation: Int = 1
  ) -> Tensor {
    let s: [Int64] = [Int64(stride), Int64(stride)]
    let p: [Int64] = [Int64(padding), Int64(padding)]
    let o: [Int64] = [Int64(outputPadding), Int64(outputPadding)]
    let d: [Int64] = [Int64(dilation), Int64(dilation)]
    return Tensor(
      handle: checked(
        ct_conv_transpose2d(handle, weight.handle, bias?.handle, s, p, o, Int64(groups), d),
        "conv_transpose2d"))
  }

  /// Batch normalisation over `[N, C, …]`. In training it normalises with the batch's statistics
  /// and updates `runningMean`/`runningVar` in place (`momentum` weights the new batch).
  public func batchNorm(
    weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?, training: Bool,
    momentum: Double = 0.1, eps: Double = 1e-5
  ) -> Tensor {
    Tensor(
      handle: checked(
        ct_batch_norm(
          handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, training,
          momentum, eps), "batch_norm"))
  }

  /// Group normalisation: channels split into `groups`, each normalised per sample.
  public func groupNorm(groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5)
    -> Tensor
  {
    Tensor(
      handle: checked(
        ct_group_norm(handle, Int64(groups), weight?.handle, bias?.handle, eps), "group_norm"))
  }

  /// Layer normalisation over the trailing `normalizedShape`.
  public func layerNorm(
    normalizedShape: [Int], weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5
  ) -> Tensor {
    normalizedShape.asInt64 {
      Tensor(
        handle: checked(
          ct_layer_norm(handle, $0, $1, weight?.handle, bias?.handle, eps), "layer_norm"))
    }
  }

  /// Average pooling with a square window (stride defaults to the window).
  public func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    let k: [Int64] = [Int64(kernel), Int64(kernel)]
    let s: [Int64] = [Int64(stride ?? kernel), Int64(stride ?? kernel)]
    let p: [Int64] = [Int64(padding), Int64(padding)]
    return Tensor(handle: checked(ct_avg_pool2d(handle, k, s, p), "avg_pool2d"))
  }

  /// Max pooling with a square window (stride defaults to the window).
  public func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    let k: [Int64] = [Int64(kernel), Int64(kernel)]
    let s: [Int64] = [Int64(stride ?? kernel), Int64(stride ?? kernel)]
    let p: [Int64] = [Int64(padding), Int64(padding)]
    return Tensor(handle: checked(ct_max_pool2d(handle, k, s, p), "max_pool2d"))
  }

  /// Average pooling to a fixed output size `[height, width]`.
  public func adaptiveAvgPool2d(_ size: (Int, Int)) -> Tensor {
    let s: [Int64] = [Int64(size.0), Int64(size.1)]
    return Tensor(handle: checked(ct_adaptive_avg_pool2d(handle, s), "adaptive_avg_pool2d"))
  }

  /// Nearest-neighbour resize to `[height, width]`.
  public func upsampleNearest(to size: (Int, Int)) -> Tensor {
    let s: [Int64] = [Int64(size.0), Int64(size.1)]
    return Tensor(handle: checked(ct_upsample_nearest2d(handle, s), "upsample_nearest2d"))
  }

  /// Nearest-neighbour resize by an integer factor (BigGAN's upsampling).
  public func upsampleNearest(scale: Int) -> Tensor {
    let dims = shape
    return upsampleNearest(to: (dims[dims.count - 2] * scale, dims[dims.count - 1] * scale))
  }

  /// Bilinear resize to `[height, width]` (`align_corners` as in PyTorch; default false).
  public func upsampleBilinear(to size: (Int, Int), alignCorners: Bool = false) -> Tensor {
    let s: [Int64] = [Int64(size.0), Int64(size.1)]
    return Tensor(
      handle: checked(ct_upsample_bilinear2d(handle, s, alignCorners), "upsample_bilinear2d"))
  }

  /// Resizes `[N, C, H, W]` to `[height, width]` with antialiased bilinear filtering (what
  /// torchvision's `resize(antialias=True)` does): shrinking averages, it does not alias.
  public func resizedBilinear(to size: (Int, Int)) -> Tensor {
    let s: [Int64] = [Int64(size.0), Int64(size.1)]
    return Tensor(handle: checked(ct_upsample_bilinear2d_aa(handle, s), "upsample_bilinear2d_aa"))
  }

  /// Pads the trailing dimensions; `pads` is PyTorch's order (last dim's left, right, then the
  /// previous dim's, …).
  public func padded(_ pads: [Int], mode: PaddingMode = .constant, value: Double = 0) -> Tensor {
    pads.asInt64 { Tensor(handle: checked(ct_pad(handle, $0, $1, mode.rawValue, value), "pad")) }
  }

  /// Rows of this `[num, dim]` table picked by the int64 `indices`.
  public func embedding(_ indices: Tensor) -> Tensor {
    Tensor(handle: checked(ct_embedding(handle, indices.handle), "embedding"))
  }

  /// Warps `[N, C, H, W]` images by the affine maps `theta [N, 2, 3]` (PyTorch's `affine_grid` +
  /// `grid_sample`, bilinear, normalised coordinates, `align_corners` false); outside is `padding`.
  public func affineWarped(_ theta: Tensor, padding: GridPadding = .zeros) -> Tensor {
    let size = shape
    let grid = size.asInt64 { Tensor(handle: checked(ct_affine_grid(theta.handle, $0, $1), "affine_grid")) }
    return Tensor(handle: checked(ct_grid_sample(handle, grid.handle, 0, padding.rawValue), "grid_sample"))
  }

  /// Zeroes each element with probability `p` and rescales the rest by 1/(1-p), in training only.
  public func dropout(_ p: Double, training: Bool) -> Tensor {
    Tensor(handle: checked(ct_dropout(handle, p, training), "dropout"))
  }

  /// Softmax along `dim`.
  public func softmax(dim: Int) -> Tensor {
    Tensor(handle: checked(ct_softmax(handle, Int64(dim)), "softmax"))
  }

  /// SAGAN/BigGAN attention's core, `softmax(queries·keys)` applied to `values`, in one CPU
  /// kernel with its own backward (CTorch's attention.cpp): `queries [B, N, dk]`,
  /// `keys [B, dk, M]`, `values [B, dv, M]` → `[B, N, dv]`, row n being
  /// `Σ_m softmax_m(queries[n]·keys[:, m]) values[:, m]`. The same arithmetic as
  /// `queries.matmul(keys).softmax(dim: -1).matmul(values.transposed(1, 2))`, without storing the
  /// `[B, N, M]` weights, which on the CPU cost more in memory traffic than the products do.
  /// Float32 or float64 CPU tensors (`supportsFusedKernels`).
  public static func fusedAttention(queries: Tensor, keys: Tensor, values: Tensor) -> Tensor {
    Tensor(handle: checked(ct_fused_attention(queries.handle, keys.handle, values.handle), "fused attention"))
  }

  /// `relu(batchNorm(self)·scale + shift + residual)` in one CPU kernel with its own backward
  /// (CTorch's batch_norm.cpp): the chain of batch_norm, mul, add and relu, forward and backward,
  /// in three passes over the activation forward and two backward instead of about ten. `scale`
  /// and `shift` are `[C]` (an affine batch norm), `[N, C]` (a conditional one, per sample) or nil
  /// (1 and 0); `residual` has this tensor's shape. In training the batch's statistics normalise
  /// and `runningMean`/`runningVar` take `momentum` of them, as `batchNorm` does; in evaluation the
  /// running statistics normalise. Float32 or float64 CPU tensors (`supportsFusedKernels`),
  /// channels-first or channels-last (the output keeps the layout).
  public func batchNormRelu(
    scale: Tensor?, shift: Tensor?, residual: Tensor? = nil, runningMean: Tensor?, runningVar: Tensor?, training: Bool,
    momentum: Double = 0.1, eps: Double = 1e-5
  ) -> Tensor {
    Tensor(
      handle: checked(
        ct_batch_norm_relu(
          handle, scale?.handle, shift?.handle, residual?.handle, runningMean?.handle, runningVar?.handle, training, momentum, eps),
        "batch norm + ReLU"))
  }

  /// Whether the fused CPU kernels (`fusedAttention`, `batchNormRelu`) take this tensor: on the
  /// CPU, in float32 or float64.
  public var supportsFusedKernels: Bool {
    device == .cpu && (dtype == .float32 || dtype == .float64)
  }

  /// Log-softmax along `dim`.
  public func logSoftmax(dim: Int) -> Tensor {
    Tensor(handle: checked(ct_log_softmax(handle, Int64(dim)), "log_softmax"))
  }

  /// One-hot encoding (int64) of these int64 class indices.
  public func oneHot(classes: Int) -> Tensor {
    Tensor(handle: checked(ct_one_hot(handle, Int64(classes)), "one_hot"))
  }
}

/// Loss functions, as in `torch.nn.functional`.
public enum Loss {
  /// Cross-entropy of `logits [N, K]` against int64 `targets [N]`, with optional label smoothing.
  public static func crossEntropy(
    _ logits: Tensor, _ targets: Tensor, labelSmoothing: Double = 0, reduction: Reduction = .mean
  ) -> Tensor {
    Tensor(
      handle: checked(
        ct_cross_entropy(logits.handle, targets.handle, reduction.rawValue, labelSmoothing),
        "cross_entropy"))
  }

  /// Negative log-likelihood of log-probabilities `[N, K]` against int64 `targets [N]`.
  public static func nll(_ logProbabilities: Tensor, _ targets: Tensor, reduction: Reduction = .mean)
    -> Tensor
  {
    Tensor(
      handle: checked(
        ct_nll_loss(logProbabilities.handle, targets.handle, reduction.rawValue), "nll_loss"))
  }

  /// Mean squared error.
  public static func mse(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    Tensor(handle: checked(ct_mse_loss(input.handle, target.handle, reduction.rawValue), "mse_loss"))
  }

  /// Mean absolute error.
  public static func l1(_ input: Tensor, _ target: Tensor, reduction: Reduction = .mean) -> Tensor {
    Tensor(handle: checked(ct_l1_loss(input.handle, target.handle, reduction.rawValue), "l1_loss"))
  }

  /// Huber-style loss: quadratic below `beta`, linear above.
  public static func smoothL1(
    _ input: Tensor, _ target: Tensor, beta: Double = 1, reduction: Reduction = .mean
  ) -> Tensor {
    Tensor(
      handle: checked(
        ct_smooth_l1_loss(input.handle, target.handle, reduction.rawValue, beta), "smooth_l1_loss"))
  }

  /// Binary cross-entropy on logits (numerically stable sigmoid + BCE).
  public static func binaryCrossEntropyWithLogits(
    _ logits: Tensor, _ targets: Tensor, reduction: Reduction = .mean
  ) -> Tensor {
    Tensor(
      handle: checked(
        ct_bce_with_logits(logits.handle, targets.handle, reduction.rawValue), "bce_with_logits"))
  }
}
