import Foundation
import TestSupport
import Torch
import XCTest

/// A module tree shaped like a tiny BigGAN block, to pin state-dict names.
final class TinyBlock: Module, Layer {
  @Child var conv: Conv2d
  @Child var norm: BatchNorm2d
  @Child var layers: Sequential

  override init() {
    conv = Conv2d(3, 8, kernelSize: 3, padding: 1, spectralNorm: true, generator: Generator(seed: 1))
    norm = BatchNorm2d(8)
    layers = Sequential(Linear(8, 4, generator: Generator(seed: 2)), Lambda { $0.relu() }, Linear(4, 2, bias: false))
    super.init()
  }

  func callAsFunction(_ x: Tensor) -> Tensor {
    layers(norm(conv(x)).relu().mean(dims: [2, 3]))
  }
}

final class ModuleTests: XCTestCase {
  func testChannelsLastStridesOneChannelAndOneByOneKernelsSoConvolutionsFollow() throws {
    // One channel and a 1×1 kernel make the two layouts coincide; channelsLast() still gives
    // channels-last strides (contiguous(ChannelsLast) would return them channels-first), so the
    // convolutions computed from them run channels-last (stride 1 along the channels).
    let gray = Tensor.randn([2, 1, 6, 6])
    let grayLast = gray.channelsLast()
    XCTAssertEqual(grayLast.stride(dim: 1), 1)
    XCTAssertTrue(grayLast.equals(gray))
    XCTAssertEqual(grayLast.channelsLast().stride(dim: 1), 1, "already channels-last: kept")
    for (input, kernel) in [(1, 3), (4, 1)] {
      let conv = Conv2d(input, 8, kernelSize: kernel, padding: kernel / 2, generator: Generator(seed: 1))
      let x = Tensor.randn([2, input, 6, 6], generator: Generator(seed: 2))
      let reference = conv(x)
      conv.convertToChannelsLast()
      XCTAssertEqual(conv.weight.stride(dim: 1), 1, "\(input) channels in, \(kernel)×\(kernel)")
      let output = conv(x.channelsLast())
      XCTAssertEqual(output.stride(dim: 1), 1, "\(input) channels in, \(kernel)×\(kernel): the output is channels-last")
      assertClose(output, reference, atol: 1e-5)
    }
    // Gradients flow through the conversion.
    let leaf = Tensor.randn([2, 1, 3, 3]).requiringGrad()
    (leaf.channelsLast() * 2).sum().backward()
    assertClose(leaf.grad!, Tensor.full([2, 1, 3, 3], 2), atol: 0)
  }

  func testStateDictNamesArePyTorchs() {
    let block = TinyBlock()
    XCTAssertEqual(
      block.namedParameters().map(\.name),
      ["conv.weight_orig", "conv.bias", "norm.weight", "norm.bias", "layers.0.weight", "layers.0.bias", "layers.2.weight"])
    XCTAssertEqual(
      block.namedBuffers().map(\.name),
      ["conv.weight_u", "conv.weight_v", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"])
    XCTAssertEqual(block.parameterCount, 8 * 3 * 9 + 8 + 8 + 8 + 4 * 8 + 4 + 2 * 4)
    XCTAssertEqual(block.namedModules().map(\.name), ["", "conv", "norm", "layers", "layers.0", "layers.1", "layers.2"])
    XCTAssertTrue(block.parameters.allSatisfy(\.requiresGrad))
  }

  func testStoredStateWithoutAWrapperIsFound() {
    final class Forgetful {
      @Parameter var weight = Tensor.zeros([2])
      let bias = Tensor.zeros([2])  // a tensor without @Parameter or @Buffer
      let head: Linear? = nil  // a module, found by its type even while nil
      let layers: [any Layer] = [Lambda { $0 }]  // found by what the array holds
      let width = 2
    }
    // Module.init stops the program on these; the list is what it checks.
    XCTAssertEqual(Module.undeclaredState(of: Forgetful()), ["bias", "head", "layers"])
    XCTAssertEqual(Module.undeclaredState(of: TinyBlock()), [])
    XCTAssertEqual(Module.undeclaredState(of: Linear(2, 2, spectralNorm: true).spectralNormalization!), [])
  }

  func testAssigningToAWrappedPropertyChangesTheState() {
    final class Gate: Module {
      @Parameter var scale: Tensor?
      @Child var projection: Linear?
      override init() {
        scale = Tensor.ones([1])
        _projection = Child(wrappedValue: nil, "proj")
        super.init()
      }
    }
    let gate = Gate()
    XCTAssertEqual(gate.namedParameters().map(\.name), ["scale"])
    gate.projection = Linear(1, 1)
    gate.scale = nil
    XCTAssertEqual(gate.namedParameters().map(\.name), ["proj.weight", "proj.bias"])
  }

  func testTrainAndEvalReachEveryModule() {
    let block = TinyBlock()
    XCTAssertTrue(block.namedModules().allSatisfy { $0.module.isTraining })
    block.eval()
    XCTAssertTrue(block.namedModules().allSatisfy { !$0.module.isTraining })
    block.train()
    XCTAssertTrue(block.layers.layers[0].isTraining)
  }

  func testBatchNormTracksRunningStatisticsOnlyInTraining() {
    let norm = BatchNorm2d(2, momentum: 0.5)
    let x = Tensor([1, 10, 3, 30] as [Float], shape: [2, 2, 1, 1])  // channel means 2, 20
    _ = norm(x)
    XCTAssertEqual(norm.runningMean.scalars(as: Float.self), [1, 10])
    // Unbiased batch variances 2 and 200, blended half and half with the initial 1.
    XCTAssertEqual(norm.runningVar.scalars(as: Float.self), [1.5, 100.5])
    XCTAssertEqual(norm.batchesTracked.itemInt(), 1)
    norm.eval()
    let y = norm(x)
    XCTAssertEqual(norm.batchesTracked.itemInt(), 1)
    XCTAssertEqual(y.scalars(as: Float.self)[0], (1 - 1) / (1.5 + 1e-5).squareRoot(), accuracy: 1e-6)
  }

  func testSpectralNormEstimateMatchesTheLargestSingularValue() {
    let layer = Linear(20, 10, spectralNorm: true, generator: Generator(seed: 3))
    let sn = layer.spectralNormalization!
    let x = Tensor.zeros([1, 20])
    for _ in 0..<50 { _ = layer(x) }  // each training forward runs one power iteration
    let matrix = layer.weight
    let largest = matrix.singularValues()[0].item()
    XCTAssertEqual(sn.sigma().item(), largest, accuracy: largest * 1e-4)
    // The normalised weight therefore has spectral norm 1.
    XCTAssertEqual(layer.effectiveWeight.singularValues()[0].item(), 1, accuracy: 1e-3)
  }

  func testSpectralNormOfAConvolutionUsesItsFlattenedWeight() {
    let conv = Conv2d(3, 6, kernelSize: 3, spectralNorm: true, generator: Generator(seed: 4))
    let x = Tensor.zeros([1, 3, 3, 3])
    for _ in 0..<60 { _ = conv(x) }
    let largest = conv.weight.reshaped([6, -1]).singularValues()[0].item()
    XCTAssertEqual(conv.spectralNormalization!.sigma().item(), largest, accuracy: largest * 1e-4)
  }

  func testSpectralNormFreezesItsVectorsInEvaluation() {
    let layer = Linear(5, 4, spectralNorm: true, generator: Generator(seed: 5))
    layer.eval()
    let u = layer.spectralNormalization!.u.clone()
    _ = layer(Tensor.zeros([1, 5]))
    XCTAssertTrue(layer.spectralNormalization!.u.equals(u))
    layer.train()
    _ = layer(Tensor.zeros([1, 5]))
    XCTAssertFalse(layer.spectralNormalization!.u.equals(u))
  }

  func testSelfAttentionStartsAsIdentity() {
    let attention = SelfAttention(channels: 16, generator: Generator(seed: 1))
    let x = Tensor.randn([2, 16, 4, 4], generator: Generator(seed: 2))
    XCTAssertTrue(attention(x).equals(x))
    XCTAssertEqual(
      attention.namedParameters().map(\.name),
      ["gamma", "theta.weight_orig", "phi.weight_orig", "g.weight_orig", "o.weight_orig"],
      "own parameters first, then children's, as PyTorch's named_parameters")
  }

  func testInitialisers() {
    let w = Tensor.empty([6, 10])
    Init.orthogonal(w, gain: 2, generator: Generator(seed: 1))
    assertClose(w.matmul(w.t), Tensor.eye(6) * 4, atol: 1e-5)
    let tall = Tensor.empty([10, 3, 1, 1])
    Init.orthogonal(tall, generator: Generator(seed: 2))
    let flat = tall.reshaped([10, 3])
    assertClose(flat.t.matmul(flat), Tensor.eye(3), atol: 1e-5)

    let big = Tensor.empty([256, 512])
    Init.xavierUniform(big, generator: Generator(seed: 3))
    let bound = (6.0 / 768).squareRoot()
    XCTAssertLessThanOrEqual(big.abs().max().item(), bound)
    XCTAssertGreaterThan(big.abs().max().item(), bound * 0.99)
    Init.xavierNormal(big, generator: Generator(seed: 3))
    XCTAssertEqual(big.standardDeviation().item(), (2.0 / 768).squareRoot(), accuracy: 0.002)
    Init.kaimingNormal(big, generator: Generator(seed: 4))
    XCTAssertEqual(big.standardDeviation().item(), (2.0 / 512).squareRoot(), accuracy: 0.002)
    Init.kaimingUniform(big, generator: Generator(seed: 5))
    XCTAssertEqual(big.standardDeviation().item(), (2.0 / 512).squareRoot(), accuracy: 0.002)
    Init.normal(big, mean: 1, std: 0.02, generator: Generator(seed: 6))
    XCTAssertEqual(big.mean().item(), 1, accuracy: 0.001)
  }

  func testExponentialMovingAverageFollowsItsFormula() throws {
    let source = Linear(2, 1, generator: Generator(seed: 1))
    let target = Linear(2, 1, generator: Generator(seed: 2))
    let ema = try ExponentialMovingAverage(source: source, target: target, decay: 0.9, startStep: 2)
    XCTAssertTrue(target.weight.equals(source.weight), "the average starts as a copy")
    withNoGrad { source.weight.fill(1) }
    ema.update(step: 1)  // before the start step: copy
    XCTAssertEqual(target.weight.scalars(as: Float.self), [1, 1])
    withNoGrad { source.weight.fill(3) }
    ema.update(step: 2)  // 0.9 · 1 + 0.1 · 3
    XCTAssertEqual(target.weight.scalars(as: Float.self)[0], 1.2, accuracy: 1e-6)
    XCTAssertThrowsError(try ExponentialMovingAverage(source: source, target: Linear(3, 1)))
  }

  func testConvertAndMoveKeepTensorIdentity() {
    let layer = Linear(2, 2)
    let weight = layer.weight
    layer.convert(to: .float64)
    XCTAssertTrue(weight === layer.weight)
    XCTAssertEqual(layer.weight.dtype, .float64)
    XCTAssertTrue(layer.weight.requiresGrad)
    layer.move(to: .cpu)
    XCTAssertEqual(layer(Tensor.ones([1, 2], dtype: .float64)).dtype, .float64)
  }
}
