/// Spectral normalisation with the semantics of `torch.nn.utils.spectral_norm`: the layer's
/// weight is `weight_orig / σ`, where σ estimates the largest singular value of `weight_orig`
/// viewed as a matrix `[shape[dim], rest]`. In training, each forward pass first runs
/// `powerIterations` steps of power iteration, updating the buffers `weight_u` and `weight_v`
/// in place; in evaluation mode the stored vectors are used as they are.
///
/// State-dict names are PyTorch's, entries of the layer that holds it (`@Part`): `weight_orig`
/// (parameter), `weight_u`, `weight_v` (buffers).
public final class SpectralNorm: ModulePart {
  /// The unnormalised weight (`weight_orig`).
  @Parameter public private(set) var weightOriginal: Tensor
  /// Left singular vector estimate, `[shape[dim]]` (`weight_u`).
  @Buffer public private(set) var u: Tensor
  /// Right singular vector estimate, `[rest]` (`weight_v`).
  @Buffer public private(set) var v: Tensor
  /// The dimension that indexes output features (1 for transposed convolutions).
  public let dim: Int
  public let powerIterations: Int
  public let eps: Double

  /// Takes over a layer's `weight` as `weight_orig`, and draws `weight_u` and `weight_v`.
  public init(
    weight: Tensor, dim: Int = 0, powerIterations: Int = 1, eps: Double = 1e-12, generator: Generator? = nil
  ) {
    self.dim = dim
    self.powerIterations = powerIterations
    self.eps = eps
    let shape = weight.shape
    let height = shape[dim]
    let width = weight.count / height
    let u = SpectralNorm.normalized(Tensor.randn([height], generator: generator, dtype: weight.dtype), eps: eps)
    let v = SpectralNorm.normalized(Tensor.randn([width], generator: generator, dtype: weight.dtype), eps: eps)
    _weightOriginal = Parameter(wrappedValue: weight, "weight_orig")
    _u = Buffer(wrappedValue: u, "weight_u")
    _v = Buffer(wrappedValue: v, "weight_v")
  }

  /// `x / max(‖x‖, eps)` for a vector.
  static func normalized(_ x: Tensor, eps: Double) -> Tensor {
    x / x.norm().clamped(min: eps)
  }

  /// The weight viewed as `[shape[dim], rest]`.
  func weightMatrix(_ weight: Tensor) -> Tensor {
    var w = weight
    if dim != 0 {
      var order = Array(0..<weight.rank)
      order.remove(at: dim)
      w = w.permuted([dim] + order)
    }
    return w.reshaped([w.size(0), -1])
  }

  /// The current estimate of the largest singular value (after any power iteration).
  public func sigma() -> Tensor {
    let matrix = weightMatrix(weightOriginal)
    return u.matmul(matrix.matmul(v))
  }

  /// `weight_orig / σ`; in training, refines `u` and `v` first (without recording gradients).
  public func normalizedWeight(training: Bool) -> Tensor {
    let matrix = weightMatrix(weightOriginal)
    if training && powerIterations > 0 {
      withNoGrad {
        let detachedMatrix = matrix.detached()
        for _ in 0..<powerIterations {
          // v ← normalise(Wᵀu), u ← normalise(Wv): written into the buffers, as PyTorch's out=.
          v.copy(from: SpectralNorm.normalized(detachedMatrix.t.matmul(u), eps: eps))
          u.copy(from: SpectralNorm.normalized(detachedMatrix.matmul(v), eps: eps))
        }
      }
    }
    // σ = uᵀ W v with u, v constants: gradients flow into weight_orig through W only.
    // PyTorch clones u and v here so that later in-place updates cannot alter this graph.
    let uConstant = u.clone()
    let vConstant = v.clone()
    // torch.dot(u, torch.mv(W, v)): matmul of (vector, vector) and (matrix, vector) are those kernels.
    let sigma = uConstant.matmul(matrix.matmul(vConstant))
    return weightOriginal / sigma
  }
}
