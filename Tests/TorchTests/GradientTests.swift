import Foundation
import TestSupport
import Torch
import XCTest

/// Autograd, and finite-difference gradient checks (float64) of every layer.
final class GradientTests: XCTestCase {
  func testBackwardFillsLeafGradients() {
    let x = Tensor([1, 2, 3] as [Double]).requiringGrad()
    (x * x).sum().backward()
    XCTAssertEqual(x.grad?.scalars(as: Double.self), [2, 4, 6])
    // Gradients accumulate until zeroed, as in PyTorch.
    (x * 3).sum().backward()
    XCTAssertEqual(x.grad?.scalars(as: Double.self), [5, 7, 9])
    x.zeroGrad()
    XCTAssertNil(x.grad)
  }

  func testBackwardWithAnExplicitGradient() {
    let x = Tensor([1, 2] as [Double]).requiringGrad()
    let y = x * x  // dy/dx = 2x
    y.backward(gradient: Tensor([10, 100] as [Double]))
    XCTAssertEqual(x.grad?.scalars(as: Double.self), [20, 400])
  }

  func testRetainGraphAllowsASecondBackward() {
    let x = Tensor([3] as [Double]).requiringGrad()
    let y = (x * x).sum()
    y.backward(retainGraph: true)
    y.backward()
    XCTAssertEqual(x.grad?.item(), 12)
  }

  func testNoGradScopeRecordsNothing() {
    let x = Tensor([1] as [Double]).requiringGrad()
    let y = withNoGrad { x * 2 }
    XCTAssertFalse(y.requiresGrad)
    XCTAssertTrue(isGradEnabled)
    XCTAssertFalse((x * 2).detached().requiresGrad)
    withNoGrad { XCTAssertFalse(isGradEnabled) }
  }

  func testInputGradientsWithCreateGraphGiveSecondDerivatives() {
    // f = Σ x³: ∂f/∂x = 3x², and ∂(Σ ∂f/∂x)/∂x = 6x (a gradient-penalty-style double backward).
    let x = Tensor([1, -2, 0.5] as [Double]).requiringGrad()
    let f = x.pow(3).sum()
    let g = Autograd.gradient(of: f, withRespectTo: x, createGraph: true)
    XCTAssertEqual(g.scalars(as: Double.self), [3, 12, 0.75])
    XCTAssertTrue(g.requiresGrad)
    XCTAssertNil(x.grad, "autograd.grad must not touch .grad")
    let second = Autograd.gradient(of: g.sum(), withRespectTo: x)
    XCTAssertEqual(second.scalars(as: Double.self), [6, -12, 3])
  }

  func testGradientsOfSeveralOutputsAndUnusedInputs() {
    let a = Tensor([2] as [Double]).requiringGrad()
    let b = Tensor([5] as [Double]).requiringGrad()
    let unused = Tensor([1] as [Double]).requiringGrad()
    let grads = Autograd.gradients(
      of: [a * b, a], withRespectTo: [a, b, unused],
      gradOutputs: [Tensor([1] as [Double]), Tensor([10] as [Double])], allowUnused: true)
    XCTAssertEqual(grads.map { $0.item() }, [15, 2, 0])
  }

  func testAttackStyleInputGradientLeavesWeightsUntouched() {
    let layer = Linear(3, 2, generator: Generator(seed: 1))
    let x = Tensor.randn([4, 3], generator: Generator(seed: 2)).requiringGrad()
    let loss = Loss.crossEntropy(layer(x), Tensor([0, 1, 0, 1] as [Int64]))
    let gradient = Autograd.gradient(of: loss, withRespectTo: x)
    XCTAssertEqual(gradient.shape, [4, 3])
    XCTAssertNil(layer.weight.grad)
  }

  // MARK: finite differences, one per layer

  func testLinearGradients() {
    let layer = Linear(4, 3, generator: Generator(seed: 1))
    layer.convert(to: .float64)
    let x = Tensor.randn([2, 4], generator: Generator(seed: 2), dtype: .float64)
    assertGradientsMatchFiniteDifferences([x, layer.weight, layer.bias!]) { randomProjection(of: layer(x)) }
  }

  func testConv2dGradients() {
    let layer = Conv2d(2, 3, kernelSize: 3, stride: 2, padding: 1, generator: Generator(seed: 1))
    layer.convert(to: .float64)
    let x = Tensor.randn([2, 2, 5, 5], generator: Generator(seed: 2), dtype: .float64)
    assertGradientsMatchFiniteDifferences([x, layer.weight, layer.bias!]) { randomProjection(of: layer(x)) }
  }

  func testGroupedDilatedConv2dGradients() {
    let layer = Conv2d(4, 4, kernelSize: 3, padding: 2, dilation: 2, groups: 2, generator: Generator(seed: 1))
    layer.convert(to: .float64)
    let x = Tensor.randn([1, 4, 5, 5], generator: Generator(seed: 2), dtype: .float64)
    assertGradientsMatchFiniteDifferences([x, layer.weight]) { randomProjection(of: layer(x)) }
  }

  func testConvTranspose2dGradients() {
    let layer = ConvTranspose2d(3, 2, kernelSize: 4, stride: 2, padding: 1, generator: Generator(seed: 1))
    layer.convert(to: .float64)
    let x = Tensor.randn([2, 3, 3, 3], generator: Generator(seed: 2), dtype: .float64)
    XCTAssertEqual(layer(x).shape, [2, 2, 6, 6])
    assertGradientsMatchFiniteDifferences([x, layer.weight, layer.bias!]) { randomProjection(of: layer(x)) }
  }

  func testBatchNormGradientsInTrainingAndEvaluation() {
    let layer = BatchNorm2d(3)
    layer.convert(to: .float64)
    withNoGrad {
      layer.weight!.copy(from: Tensor([0.5, 1.5, -1] as [Double]))
      layer.bias!.copy(from: Tensor([0.1, 0, -0.2] as [Double]))
    }
    let x = Tensor.randn([4, 3, 2, 2], generator: Generator(seed: 2), dtype: .float64)
    // Training mode normalises with batch statistics (which depend on x).
    assertGradientsMatchFiniteDifferences([x, layer.weight!, layer.bias!]) { randomProjection(of: layer(x)) }
    layer.eval()
    assertGradientsMatchFiniteDifferences([x, layer.weight!]) { randomProjection(of: layer(x)) }
  }

  func testGroupNormAndLayerNormGradients() {
    let group = GroupNorm(groups: 2, channels: 4)
    group.convert(to: .float64)
    let x = Tensor.randn([2, 4, 3, 3], generator: Generator(seed: 2), dtype: .float64)
    assertGradientsMatchFiniteDifferences([x, group.weight!, group.bias!]) { randomProjection(of: group(x)) }
    let layer = LayerNorm([3, 3])
    layer.convert(to: .float64)
    assertGradientsMatchFiniteDifferences([x, layer.weight!]) { randomProjection(of: layer(x)) }
  }

  func testEmbeddingGradients() {
    let table = Embedding(count: 5, dimension: 3, generator: Generator(seed: 1))
    table.convert(to: .float64)
    let ids = Tensor([4, 0, 4, 2] as [Int64])
    assertGradientsMatchFiniteDifferences([table.weight]) { randomProjection(of: table(ids)) }
  }

  func testSpectrallyNormalisedLayerGradients() {
    // In evaluation mode u and v are fixed, so W / σ(W) is a smooth function of W to check.
    let linear = Linear(4, 3, spectralNorm: true, generator: Generator(seed: 1))
    let conv = Conv2d(2, 3, kernelSize: 3, padding: 1, spectralNorm: true, generator: Generator(seed: 2))
    let embedding = Embedding(count: 4, dimension: 3, spectralNorm: true, generator: Generator(seed: 3))
    let transposed = ConvTranspose2d(3, 2, kernelSize: 4, stride: 2, padding: 1, spectralNorm: true, generator: Generator(seed: 6))
    for module in [linear, conv, embedding, transposed] as [Module] {
      module.convert(to: .float64)
      module.eval()
    }
    let x = Tensor.randn([2, 4], generator: Generator(seed: 4), dtype: .float64)
    assertGradientsMatchFiniteDifferences([x, linear.weight]) { randomProjection(of: linear(x)) }
    let image = Tensor.randn([1, 2, 4, 4], generator: Generator(seed: 5), dtype: .float64)
    assertGradientsMatchFiniteDifferences([image, conv.weight]) { randomProjection(of: conv(image)) }
    assertGradientsMatchFiniteDifferences([embedding.weight]) {
      randomProjection(of: embedding(Tensor([0, 3] as [Int64])))
    }
    let small = Tensor.randn([1, 3, 2, 2], generator: Generator(seed: 7), dtype: .float64)
    assertGradientsMatchFiniteDifferences([small, transposed.weight]) { randomProjection(of: transposed(small)) }
  }

  func testSelfAttentionGradients() {
    let attention = SelfAttention(channels: 8, generator: Generator(seed: 1))
    attention.convert(to: .float64)
    attention.eval()
    withNoGrad { attention.gamma.fill(0.7) }  // γ starts at 0; open the gate to test the path
    let x = Tensor.randn([2, 8, 4, 4], generator: Generator(seed: 2), dtype: .float64)
    assertGradientsMatchFiniteDifferences(
      [x, attention.gamma, attention.theta.weight, attention.g.weight, attention.o.weight]
    ) { randomProjection(of: attention(x)) }
  }

  // MARK: the fused attention kernel (CTorch's attention.cpp)

  /// The aten formulation the kernel replaces: softmax(queries·keys)·valuesᵀ.
  func attentionByProducts(_ queries: Tensor, _ keys: Tensor, _ values: Tensor) -> Tensor {
    queries.matmul(keys).softmax(dim: -1).matmul(values.transposed(1, 2))  // [B, N, dv]
  }

  /// Queries [B, N, dk], keys [B, dk, M], values [B, dv, M], scaled so the scores have a standard
  /// deviation of `spread`/√dk.
  func attentionInputs(_ b: Int, _ n: Int, _ m: Int, _ dk: Int, _ dv: Int, spread: Double, dtype: DType, seed: UInt64) -> [Tensor] {
    let generator = Generator(seed: seed)
    return [
      Tensor.randn([b, n, dk], generator: generator, dtype: dtype) * (spread / Double(dk)).squareRoot(),
      Tensor.randn([b, dk, m], generator: generator, dtype: dtype) * (spread / Double(dk)).squareRoot(),
      Tensor.randn([b, dv, m], generator: generator, dtype: dtype),
    ]
  }

  func testFusedAttentionMatchesTheBatchedProductsAndSoftmax() {
    // Sizes that are and are not multiples of the kernel's 8 lanes, BigGAN's own (dk 2, dv 8 at
    // ch 16) and scores of standard deviation 60 (reaching ±200), where an unshifted softmax
    // would overflow float32's exp.
    // In float64 the two agree to rounding; in float32 the kernel's error against float64 is
    // within 4 times aten's own (summation orders differ: 8 lanes against MKL's).
    for (b, n, m, dk, dv, spread) in [(3, 20, 7, 3, 5, 4.0), (2, 64, 16, 2, 8, 4.0), (2, 33, 41, 1, 9, 60.0)] {
      let exactInputs = attentionInputs(b, n, m, dk, dv, spread: spread, dtype: .float64, seed: UInt64(n))
      let direction = Tensor.randn([b, n, dv], generator: Generator(seed: 3), dtype: .float64)
      func run(_ dtype: DType, fused: Bool) -> [Tensor] {
        let inputs = exactInputs.map { $0.to(dtype).requiringGrad() }
        let out = fused ? Tensor.fusedAttention(queries: inputs[0], keys: inputs[1], values: inputs[2]) : attentionByProducts(inputs[0], inputs[1], inputs[2])
        XCTAssertEqual(out.shape, [b, n, dv])
        let gradients = Autograd.gradients(of: [(out.to(.float64) * direction).sum()], withRespectTo: inputs)
        return ([out] + gradients).map { $0.to(.float64) }
      }
      let exact = run(.float64, fused: false)
      let fused64 = run(.float64, fused: true), fused32 = run(.float32, fused: true), aten32 = run(.float32, fused: false)
      for (index, truth) in exact.enumerated() {
        let scale = max(1, truth.abs().max().item())
        XCTAssertLessThan((fused64[index] - truth).abs().max().item(), 1e-12 * scale, "tensor \(index) in float64, \(b)×\(n)×\(m)")
        let (fusedError, atenError) = ((fused32[index] - truth).abs().max().item(), (aten32[index] - truth).abs().max().item())
        XCTAssertLessThan(fusedError, 4 * atenError + 1e-7 * scale, "tensor \(index) in float32, \(b)×\(n)×\(m): aten's \(atenError)")
      }
    }
  }

  func testFusedAttentionGradientsMatchFiniteDifferences() {
    let inputs = attentionInputs(2, 10, 12, 2, 3, spread: 3, dtype: .float64, seed: 5)
    assertGradientsMatchFiniteDifferences(inputs) {
      randomProjection(of: Tensor.fusedAttention(queries: inputs[0], keys: inputs[1], values: inputs[2]))
    }
  }

  func testFusedAttentionHasTheSecondDerivativesOfTheProducts() {
    // create_graph (a gradient penalty through D) differentiates the kernel's gradient again.
    let inputs = attentionInputs(2, 9, 11, 2, 3, spread: 3, dtype: .float64, seed: 6)
    func secondDerivatives(_ attention: (Tensor, Tensor, Tensor) -> Tensor) -> [[Double]] {
      for input in inputs { input.grad = nil; input.requiresGrad = true }
      let out = randomProjection(of: attention(inputs[0], inputs[1], inputs[2]))
      let first = Autograd.gradients(of: [out], withRespectTo: inputs, createGraph: true)
      let squares = first.map { $0.pow(2).sum() }
      let penalty = squares.dropFirst().reduce(squares[0], +)
      return Autograd.gradients(of: [penalty], withRespectTo: inputs).map { $0.scalars(as: Double.self) }
    }
    let fused = secondDerivatives { Tensor.fusedAttention(queries: $0, keys: $1, values: $2) }
    let reference = secondDerivatives(attentionByProducts)
    for (a, r) in zip(fused, reference) { assertClose(a, r, atol: 1e-10) }
  }

  func testFusedAttentionSecondDerivativesSkipConstantInputs() {
    // Keys that take no gradient (a constant) in a create_graph pass: the others still get theirs.
    let inputs = attentionInputs(2, 9, 11, 2, 3, spread: 3, dtype: .float64, seed: 8)
    let (queries, values) = (inputs[0].requiringGrad(), inputs[2].requiringGrad())
    func gradients(_ attention: (Tensor, Tensor, Tensor) -> Tensor) -> [[Double]] {
      let out = randomProjection(of: attention(queries, inputs[1], values))
      let first = Autograd.gradients(of: [out], withRespectTo: [queries, values], createGraph: true)
      let penalty = first[0].pow(2).sum() + first[1].pow(2).sum()
      return Autograd.gradients(of: [penalty], withRespectTo: [queries, values]).map { $0.scalars(as: Double.self) }
    }
    let fused = gradients { Tensor.fusedAttention(queries: $0, keys: $1, values: $2) }
    for (a, r) in zip(fused, gradients(attentionByProducts)) { assertClose(a, r, atol: 1e-10) }
  }

  func testFusedAttentionRefusesMismatchedInputsWithAnError() {
    let inputs = attentionInputs(2, 4, 6, 2, 3, spread: 1, dtype: .float32, seed: 7)
    XCTAssertThrowsError(try catchingTorchErrors { _ = Tensor.fusedAttention(queries: inputs[0], keys: inputs[2], values: inputs[2]) }) {
      XCTAssertTrue("\($0)".contains("queries have 2 channels and keys 3"), "\($0)")
    }
    XCTAssertThrowsError(try catchingTorchErrors {
      _ = Tensor.fusedAttention(queries: inputs[0].to(.float16), keys: inputs[1].to(.float16), values: inputs[2].to(.float16))
    }) { XCTAssertTrue("\($0)".contains("float32 or float64"), "\($0)") }
  }

  func testSelfAttentionFusedIsAsAccurateAsTheBatchedProducts() throws {
    // BigGAN's layer at ch 16 on a channels-last batch, as the inverter runs it, in float32 fused
    // and unfused, each against the unfused layer in float64.
    func layer(_ dtype: DType) -> SelfAttention {
      let attention = SelfAttention(channels: 16, generator: Generator(seed: 1))
      attention.convert(to: dtype)
      attention.eval()  // spectral norm's power iteration would otherwise move the weights between runs
      withNoGrad { attention.gamma.fill(0.5) }
      attention.convertToChannelsLast()
      return attention
    }
    // 32×32 positions, 262,144 weights per image: over SelfAttention.fusedMinimumWeights.
    let x = Tensor.randn([2, 16, 32, 32], generator: Generator(seed: 2)).channelsLast()
    func run(_ attention: SelfAttention, fused: Bool, dtype: DType) -> [Tensor] {
      attention.fused = fused
      let input = x.to(dtype).requiringGrad()
      let output = attention(input)
      let inputs = [input, attention.theta.weight, attention.phi.weight, attention.g.weight]
      let gradients = Autograd.gradients(of: [randomProjection(of: output.to(.float64))], withRespectTo: inputs)
      return ([output] + gradients).map { $0.to(.float64) }
    }
    let single = layer(.float32)
    let trace = try Torch.recordOperations { _ = withNoGrad { single(x) } }
    XCTAssertTrue(trace.contains("afterimage::fused_attention"), "the fused kernel did not run")
    let exact = run(layer(.float64), fused: false, dtype: .float64)
    let fused = run(single, fused: true, dtype: .float32)
    let unfused = run(single, fused: false, dtype: .float32)
    for (index, truth) in exact.enumerated() {
      let fusedError = (fused[index] - truth).abs().max().item()
      let unfusedError = (unfused[index] - truth).abs().max().item()
      let scale = truth.abs().max().item()
      XCTAssertLessThan(fusedError, 2 * unfusedError + 1e-6 * scale, "tensor \(index): fused \(fusedError), aten's \(unfusedError)")
      XCTAssertLessThan(fusedError, 1e-4 * scale, "tensor \(index)")
    }
  }

  func testSequentialCompositeGradients() {
    let model = Sequential(
      Conv2d(1, 2, kernelSize: 3, padding: 1, generator: Generator(seed: 1)),
      Lambda { $0.leakyRelu(slope: 0.2) },
      Lambda { $0.avgPool2d(kernel: 2) },
      Lambda { $0.flattened(from: 1) },
      Linear(8, 2, generator: Generator(seed: 2)))
    model.convert(to: .float64)
    let x = Tensor.randn([2, 1, 4, 4], generator: Generator(seed: 3), dtype: .float64)
    assertGradientsMatchFiniteDifferences([x] + model.parameters) {
      Loss.crossEntropy(model(x), Tensor([1, 0] as [Int64]), labelSmoothing: 0.1)
    }
  }
}
