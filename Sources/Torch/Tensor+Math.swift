import CTorch

// Each operation calls its own shim function (Sources/CTorch/include/ctorch.h); the name given
// to `checked` is the one a failure reports.

// MARK: - Arithmetic operators (broadcasting, as in PyTorch)

extension Tensor {
  public static func + (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_add(a.handle, b.handle), "add")) }
  public static func - (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_sub(a.handle, b.handle), "sub")) }
  public static func * (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_mul(a.handle, b.handle), "mul")) }
  public static func / (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_div(a.handle, b.handle), "div")) }
  public static prefix func - (a: Tensor) -> Tensor { Tensor(handle: checked(ct_neg(a.handle), "neg")) }

  public static func + (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_add_scalar(a.handle, b), "add")) }
  public static func - (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_sub_scalar(a.handle, b), "sub")) }
  public static func * (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_mul_scalar(a.handle, b), "mul")) }
  public static func / (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_div_scalar(a.handle, b), "div")) }
  public static func + (a: Double, b: Tensor) -> Tensor { Tensor(handle: checked(ct_add_scalar(b.handle, a), "add")) }
  public static func - (a: Double, b: Tensor) -> Tensor { Tensor(handle: checked(ct_rsub_scalar(b.handle, a), "sub")) }
  public static func * (a: Double, b: Tensor) -> Tensor { Tensor(handle: checked(ct_mul_scalar(b.handle, a), "mul")) }
  public static func / (a: Double, b: Tensor) -> Tensor { Tensor(handle: checked(ct_rdiv_scalar(b.handle, a), "div")) }

  // Elementwise comparisons give bool tensors (the SIMD-style dotted operators).
  public static func .== (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_eq(a.handle, b.handle), "eq")) }
  public static func .!= (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_ne(a.handle, b.handle), "ne")) }
  public static func .< (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_lt(a.handle, b.handle), "lt")) }
  public static func .<= (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_le(a.handle, b.handle), "le")) }
  public static func .> (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_gt(a.handle, b.handle), "gt")) }
  public static func .>= (a: Tensor, b: Tensor) -> Tensor { Tensor(handle: checked(ct_ge(a.handle, b.handle), "ge")) }
  public static func .== (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_eq_scalar(a.handle, b), "eq")) }
  public static func .!= (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_ne_scalar(a.handle, b), "ne")) }
  public static func .< (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_lt_scalar(a.handle, b), "lt")) }
  public static func .<= (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_le_scalar(a.handle, b), "le")) }
  public static func .> (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_gt_scalar(a.handle, b), "gt")) }
  public static func .>= (a: Tensor, b: Double) -> Tensor { Tensor(handle: checked(ct_ge_scalar(a.handle, b), "ge")) }

  /// Elementwise logical and of two bool tensors.
  public static func .& (a: Tensor, b: Tensor) -> Tensor {
    Tensor(handle: checked(ct_logical_and(a.handle, b.handle), "logicalAnd"))
  }
  /// Elementwise logical or of two bool tensors.
  public static func .| (a: Tensor, b: Tensor) -> Tensor {
    Tensor(handle: checked(ct_logical_or(a.handle, b.handle), "logicalOr"))
  }
  /// Elementwise logical not of a bool tensor.
  public static prefix func .! (a: Tensor) -> Tensor { Tensor(handle: checked(ct_logical_not(a.handle), "logicalNot")) }

  /// `self` raised elementwise to `exponent`.
  public func pow(_ exponent: Double) -> Tensor { Tensor(handle: checked(ct_pow_scalar(handle, exponent), "pow")) }
  /// `self` raised elementwise to `exponent` (broadcasting).
  public func pow(_ exponent: Tensor) -> Tensor { Tensor(handle: checked(ct_pow(handle, exponent.handle), "pow")) }
  /// The elementwise larger of the two.
  public func maximum(_ other: Tensor) -> Tensor { Tensor(handle: checked(ct_maximum(handle, other.handle), "maximum")) }
  /// The elementwise smaller of the two.
  public func minimum(_ other: Tensor) -> Tensor { Tensor(handle: checked(ct_minimum(handle, other.handle), "minimum")) }
  /// Elementwise `atan2(self, other)`.
  public func atan2(_ other: Tensor) -> Tensor { Tensor(handle: checked(ct_atan2(handle, other.handle), "atan2")) }
  /// Elementwise remainder with the divisor's sign (Python's `%`).
  public func remainder(_ divisor: Double) -> Tensor {
    Tensor(handle: checked(ct_remainder_scalar(handle, divisor), "remainder"))
  }
  /// Elementwise division rounded toward negative infinity.
  public func floorDivided(by divisor: Double) -> Tensor {
    Tensor(handle: checked(ct_floor_divide_scalar(handle, divisor), "floorDivide"))
  }

  /// Matrix product with broadcasting over batch dimensions (`torch.matmul`).
  public func matmul(_ other: Tensor) -> Tensor {
    Tensor(handle: checked(ct_matmul(handle, other.handle), "matmul"))
  }

  /// `bias + a @ b` in one call.
  public static func addmm(_ bias: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    Tensor(handle: checked(ct_addmm(bias.handle, a.handle, b.handle), "addmm"))
  }

  /// The outer product of two vectors.
  public func outer(_ other: Tensor) -> Tensor {
    Tensor(handle: checked(ct_outer(handle, other.handle), "outer"))
  }
}

// MARK: - Elementwise functions

extension Tensor {
  public func exp() -> Tensor { Tensor(handle: checked(ct_exp(handle), "exp")) }
  public func log() -> Tensor { Tensor(handle: checked(ct_log(handle), "log")) }
  public func log2() -> Tensor { Tensor(handle: checked(ct_log2(handle), "log2")) }
  public func log1p() -> Tensor { Tensor(handle: checked(ct_log1p(handle), "log1p")) }
  public func expm1() -> Tensor { Tensor(handle: checked(ct_expm1(handle), "expm1")) }
  public func sqrt() -> Tensor { Tensor(handle: checked(ct_sqrt(handle), "sqrt")) }
  public func rsqrt() -> Tensor { Tensor(handle: checked(ct_rsqrt(handle), "rsqrt")) }
  public func abs() -> Tensor { Tensor(handle: checked(ct_abs(handle), "abs")) }
  public func sign() -> Tensor { Tensor(handle: checked(ct_sign(handle), "sign")) }
  public func square() -> Tensor { Tensor(handle: checked(ct_square(handle), "square")) }
  public func reciprocal() -> Tensor { Tensor(handle: checked(ct_reciprocal(handle), "reciprocal")) }
  public func sin() -> Tensor { Tensor(handle: checked(ct_sin(handle), "sin")) }
  public func cos() -> Tensor { Tensor(handle: checked(ct_cos(handle), "cos")) }
  public func floor() -> Tensor { Tensor(handle: checked(ct_floor(handle), "floor")) }
  public func ceil() -> Tensor { Tensor(handle: checked(ct_ceil(handle), "ceil")) }
  public func round() -> Tensor { Tensor(handle: checked(ct_round(handle), "round")) }
  public func trunc() -> Tensor { Tensor(handle: checked(ct_trunc(handle), "trunc")) }
  public func erf() -> Tensor { Tensor(handle: checked(ct_erf(handle), "erf")) }
  public func tanh() -> Tensor { Tensor(handle: checked(ct_tanh(handle), "tanh")) }
  public func sigmoid() -> Tensor { Tensor(handle: checked(ct_sigmoid(handle), "sigmoid")) }
  public func relu() -> Tensor { Tensor(handle: checked(ct_relu(handle), "relu")) }
  public func silu() -> Tensor { Tensor(handle: checked(ct_silu(handle), "silu")) }
  /// Elementwise test for NaN (bool tensor).
  public func isNaN() -> Tensor { Tensor(handle: checked(ct_isnan(handle), "isnan")) }
  /// Elementwise test for a finite value (bool tensor).
  public func isFinite() -> Tensor { Tensor(handle: checked(ct_isfinite(handle), "isfinite")) }

  /// Values limited to `min...max` (either bound may be omitted).
  public func clamped(min: Double? = nil, max: Double? = nil) -> Tensor {
    Tensor(
      handle: checked(ct_clamp(handle, min ?? 0, max ?? 0, min != nil, max != nil), "clamp"))
  }

  /// `x` where positive, `slope * x` elsewhere.
  public func leakyRelu(slope: Double = 0.01) -> Tensor {
    Tensor(handle: checked(ct_leaky_relu(handle, slope), "leaky_relu"))
  }

  /// The Gaussian error linear unit (exact, or the tanh approximation).
  public func gelu(tanhApproximation: Bool = false) -> Tensor {
    Tensor(handle: checked(ct_gelu(handle, tanhApproximation), "gelu"))
  }

  /// `log(1 + exp(beta * x)) / beta`, linear above `threshold` for stability.
  public func softplus(beta: Double = 1, threshold: Double = 20) -> Tensor {
    Tensor(handle: checked(ct_softplus(handle, beta, threshold), "softplus"))
  }

  /// The exponential linear unit.
  public func elu(alpha: Double = 1) -> Tensor {
    Tensor(handle: checked(ct_elu(handle, alpha), "elu"))
  }

  /// Values clipped linearly to `min...max` (gradient zero outside).
  public func hardtanh(min: Double = -1, max: Double = 1) -> Tensor {
    Tensor(handle: checked(ct_hardtanh(handle, min, max), "hardtanh"))
  }
}

// MARK: - Reductions

extension Tensor {
  @inline(__always)
  private func reduce(
    _ dims: [Int]?, _ call: (UnsafePointer<Int64>?, Int32) -> ct_tensor?, _ name: String
  ) -> Tensor {
    guard let dims else { return Tensor(handle: checked(call(nil, 0), name)) }
    return dims.asInt64 { Tensor(handle: checked(call($0, $1), name)) }
  }

  /// The sum of all elements, or over `dims`.
  public func sum(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_sum(handle, $0, $1, keepDim) }, "sum")
  }
  /// The sum over one dimension.
  public func sum(dim: Int, keepDim: Bool = false) -> Tensor { sum(dims: [dim], keepDim: keepDim) }

  /// The mean of all elements, or over `dims`.
  public func mean(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_mean(handle, $0, $1, keepDim) }, "mean")
  }
  /// The mean over one dimension.
  public func mean(dim: Int, keepDim: Bool = false) -> Tensor { mean(dims: [dim], keepDim: keepDim) }

  /// The product of all elements.
  public func prod() -> Tensor { Tensor(handle: checked(ct_prod(handle), "prod")) }

  /// The largest element, or the largest over `dims`.
  public func max(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_amax(handle, $0, $1, keepDim) }, "max")
  }
  /// The smallest element, or the smallest over `dims`.
  public func min(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_amin(handle, $0, $1, keepDim) }, "min")
  }

  /// The largest values along `dim` and where they are.
  public func max(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
    tensorPair("max", secondDType: .int64) { ct_max_dim(handle, Int64(dim), keepDim, $0, $1) }
  }
  /// The smallest values along `dim` and where they are.
  public func min(dim: Int, keepDim: Bool = false) -> (values: Tensor, indices: Tensor) {
    tensorPair("min", secondDType: .int64) { ct_min_dim(handle, Int64(dim), keepDim, $0, $1) }
  }

  /// The index of the largest value along `dim`.
  public func argmax(dim: Int, keepDim: Bool = false) -> Tensor {
    Tensor(handle: checked(ct_argmax(handle, Int64(dim), keepDim), "argmax"))
  }
  /// The index of the smallest value along `dim`.
  public func argmin(dim: Int, keepDim: Bool = false) -> Tensor {
    Tensor(handle: checked(ct_argmin(handle, Int64(dim), keepDim), "argmin"))
  }

  /// The variance (unbiased by default, as in PyTorch) of all elements or over `dims`.
  public func variance(dims: [Int]? = nil, unbiased: Bool = true, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_var(handle, $0, $1, unbiased, keepDim) }, "var")
  }
  /// The standard deviation (unbiased by default) of all elements or over `dims`.
  public func standardDeviation(dims: [Int]? = nil, unbiased: Bool = true, keepDim: Bool = false)
    -> Tensor
  {
    reduce(dims, { ct_std(handle, $0, $1, unbiased, keepDim) }, "std")
  }

  /// The p-norm of all elements, or over `dims`.
  public func norm(p: Double = 2, dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_norm(handle, p, $0, $1, keepDim) }, "norm")
  }

  /// `log(sum(exp(x)))` computed stably, over all elements or `dims`.
  public func logsumexp(dims: [Int]? = nil, keepDim: Bool = false) -> Tensor {
    reduce(dims, { ct_logsumexp(handle, $0, $1, keepDim) }, "logsumexp")
  }

  /// Running sums along `dim`.
  public func cumsum(dim: Int) -> Tensor {
    Tensor(handle: checked(ct_cumsum(handle, Int64(dim)), "cumsum"))
  }

  /// The `k` largest (or smallest) values along `dim` and their indices.
  public func topk(_ k: Int, dim: Int = -1, largest: Bool = true, sorted: Bool = true)
    -> (values: Tensor, indices: Tensor)
  {
    tensorPair("topk", secondDType: .int64) { ct_topk(handle, Int64(k), Int64(dim), largest, sorted, $0, $1) }
  }

  /// Values sorted along `dim`, and the permutation that sorts them.
  public func sorted(dim: Int = -1, descending: Bool = false) -> (values: Tensor, indices: Tensor) {
    tensorPair("sort", secondDType: .int64) { ct_sort(handle, Int64(dim), descending, $0, $1) }
  }

  /// Whether every element is within `atol + rtol * |other|` of `other`.
  public func allClose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8) -> Bool {
    ct_clear_error()
    let result = ct_allclose(handle, other.handle, rtol, atol)
    if ct_last_error() != nil { reportShimFailure("allclose") }
    return result
  }

  /// Whether both tensors have the same shape and elements.
  public func equals(_ other: Tensor) -> Bool {
    ct_clear_error()
    let result = ct_equal(handle, other.handle)
    if ct_last_error() != nil { reportShimFailure("equal") }
    return result
  }

}

extension Tensor {
  /// The two tensors a shim call writes through its out-pointers (values and indices, or
  /// eigenvalues and eigenvectors); on failure, after reporting it, two empty tensors: float32
  /// and `secondDType`, standing in for what the call would have returned.
  private func tensorPair(
    _ name: String, secondDType: DType,
    _ call: (UnsafeMutablePointer<ct_tensor?>, UnsafeMutablePointer<ct_tensor?>) -> Int32
  ) -> (Tensor, Tensor) {
    var first: ct_tensor?
    var second: ct_tensor?
    if call(&first, &second) < 0 {
      reportShimFailure(name)
      return (Tensor.zeros([0]), Tensor.zeros([0], dtype: secondDType))
    }
    return (Tensor(handle: first!), Tensor(handle: second!))
  }
}

// MARK: - Linear algebra

extension Tensor {
  /// The singular values of a matrix, largest first.
  public func singularValues() -> Tensor { Tensor(handle: checked(ct_svdvals(handle), "svdvals")) }

  /// Eigenvalues (ascending) and eigenvectors (columns) of a symmetric matrix.
  public func symmetricEigen() -> (values: Tensor, vectors: Tensor) {
    tensorPair("eigh", secondDType: .float32) { ct_eigh(handle, $0, $1) }
  }

  /// The reduced QR decomposition of a matrix.
  public func qr() -> (q: Tensor, r: Tensor) {
    tensorPair("qr", secondDType: .float32) { ct_qr(handle, $0, $1) }
  }
}

// MARK: - In place (for optimizers, initialisers and running statistics; use under withNoGrad)

extension Tensor {
  /// Overwrites the elements with `source`'s (broadcast, converted).
  public func copy(from source: Tensor) { checked(status: ct_copy_(handle, source.handle), "copy_") }
  /// Replaces the data behind this tensor (its dtype and device may change) while keeping the
  /// tensor's identity, as PyTorch's `param.data = other`; how modules change dtype or device.
  public func replaceData(with source: Tensor) {
    checked(status: ct_set_data(handle, source.handle), "set_data")
  }
  /// Sets every element to zero.
  public func zero() { checked(status: ct_zero_(handle), "zero_") }
  /// Sets every element to `value`.
  public func fill(_ value: Double) { checked(status: ct_fill_(handle, value), "fill_") }
  /// `self += alpha * other`.
  public func addInPlace(_ other: Tensor, alpha: Double = 1) {
    checked(status: ct_add_(handle, other.handle, alpha), "add_")
  }
  /// `self += value`.
  public func addInPlace(_ value: Double) { checked(status: ct_add_scalar_(handle, value), "add_") }
  /// `self *= other`.
  public func multiplyInPlace(_ other: Tensor) { checked(status: ct_mul_(handle, other.handle), "mul_") }
  /// `self *= value`.
  public func multiplyInPlace(_ value: Double) {
    checked(status: ct_mul_scalar_(handle, value), "mul_")
  }
  /// `self /= other`.
  public func divideInPlace(_ other: Tensor) { checked(status: ct_div_(handle, other.handle), "div_") }
  /// `self += value * a * b`.
  public func addProductInPlace(_ a: Tensor, _ b: Tensor, value: Double = 1) {
    checked(status: ct_addcmul_(handle, a.handle, b.handle, value), "addcmul_")
  }
  /// `self += value * a / b`.
  public func addQuotientInPlace(_ a: Tensor, _ b: Tensor, value: Double = 1) {
    checked(status: ct_addcdiv_(handle, a.handle, b.handle, value), "addcdiv_")
  }
  /// `self += weight * (end - self)`.
  public func lerpInPlace(toward end: Tensor, weight: Double) {
    checked(status: ct_lerp_(handle, end.handle, weight), "lerp_")
  }
  /// `self = sqrt(self)`.
  public func sqrtInPlace() { checked(status: ct_sqrt_(handle), "sqrt_") }
  /// Limits the elements to `min...max`.
  public func clampInPlace(min: Double, max: Double) {
    checked(status: ct_clamp_(handle, min, max), "clamp_")
  }
  /// Fills with uniform samples from `low..<high`.
  public func uniformInPlace(_ low: Double, _ high: Double, generator: Generator? = nil) {
    checked(status: ct_uniform_(handle, low, high, generator?.handle), "uniform_")
  }
  /// Fills with normal samples.
  public func normalInPlace(mean: Double = 0, std: Double = 1, generator: Generator? = nil) {
    checked(status: ct_normal_(handle, mean, std, generator?.handle), "normal_")
  }
}
