import Foundation

/// Weight initialisers (`torch.nn.init`), filling a tensor in place without recording gradients.
public enum Init {
  /// Fan-in and fan-out as PyTorch computes them: dim 1 and dim 0 times the receptive field.
  public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
    precondition(shape.count >= 2, "fans need at least two dimensions, got \(shape)")
    let receptiveField = shape.dropFirst(2).reduce(1, *)
    return (shape[1] * receptiveField, shape[0] * receptiveField)
  }

  /// Samples from U(low, high).
  public static func uniform(_ tensor: Tensor, _ low: Double, _ high: Double, generator: Generator? = nil) {
    withNoGrad { tensor.uniformInPlace(low, high, generator: generator) }
  }

  /// Samples from N(mean, std²).
  public static func normal(_ tensor: Tensor, mean: Double = 0, std: Double = 1, generator: Generator? = nil) {
    withNoGrad { tensor.normalInPlace(mean: mean, std: std, generator: generator) }
  }

  /// Glorot uniform: U(-a, a) with a = gain·√(6 / (fanIn + fanOut)).
  public static func xavierUniform(_ tensor: Tensor, gain: Double = 1, generator: Generator? = nil) {
    let (fanIn, fanOut) = fans(tensor.shape)
    let bound = gain * Foundation.sqrt(6.0 / Double(fanIn + fanOut))
    uniform(tensor, -bound, bound, generator: generator)
  }

  /// Glorot normal: N(0, gain²·2 / (fanIn + fanOut)).
  public static func xavierNormal(_ tensor: Tensor, gain: Double = 1, generator: Generator? = nil) {
    let (fanIn, fanOut) = fans(tensor.shape)
    normal(tensor, std: gain * Foundation.sqrt(2.0 / Double(fanIn + fanOut)), generator: generator)
  }

  /// The gain PyTorch uses for a leaky ReLU with negative slope `a` (a = 0: ReLU).
  static func leakyReluGain(_ a: Double) -> Double { Foundation.sqrt(2.0 / (1 + a * a)) }

  /// He uniform for a leaky ReLU of slope `a`, scaled by fan-in (or fan-out).
  public static func kaimingUniform(
    _ tensor: Tensor, a: Double = 0, fanOutMode: Bool = false, generator: Generator? = nil
  ) {
    let (fanIn, fanOut) = fans(tensor.shape)
    let std = leakyReluGain(a) / Foundation.sqrt(Double(fanOutMode ? fanOut : fanIn))
    let bound = Foundation.sqrt(3.0) * std
    uniform(tensor, -bound, bound, generator: generator)
  }

  /// He normal for a leaky ReLU of slope `a`.
  public static func kaimingNormal(
    _ tensor: Tensor, a: Double = 0, fanOutMode: Bool = false, generator: Generator? = nil
  ) {
    let (fanIn, fanOut) = fans(tensor.shape)
    normal(
      tensor, std: leakyReluGain(a) / Foundation.sqrt(Double(fanOutMode ? fanOut : fanIn)),
      generator: generator)
  }

  /// A (semi-)orthogonal matrix, as `torch.nn.init.orthogonal_`: the tensor viewed as
  /// `[shape[0], rest]` gets orthonormal rows or columns, times `gain`.
  public static func orthogonal(_ tensor: Tensor, gain: Double = 1, generator: Generator? = nil) {
    let rows = tensor.shape[0]
    let columns = tensor.count / Swift.max(rows, 1)
    withNoGrad {
      var flat = Tensor.randn([rows, columns], generator: generator, dtype: tensor.dtype)
      if rows < columns { flat = flat.t }
      let (q, r) = flat.qr()
      // Sign correction makes the distribution uniform over orthogonal matrices.
      var orthonormal = q * r.diagonal().sign().unsqueezed(0)
      if rows < columns { orthonormal = orthonormal.t }
      tensor.copy(from: (orthonormal * gain).reshaped(tensor.shape))
    }
  }

  /// PyTorch's default for Linear and Conv layers: kaiming-uniform with a = √5 for the weight
  /// (U(±1/√fanIn)) and U(±1/√fanIn) for the bias.
  static func pytorchDefault(weight: Tensor, bias: Tensor?, fanIn: Int, generator: Generator?) {
    let bound = 1 / Foundation.sqrt(Double(Swift.max(fanIn, 1)))
    uniform(weight, -bound, bound, generator: generator)
    if let bias { uniform(bias, -bound, bound, generator: generator) }
  }
}
