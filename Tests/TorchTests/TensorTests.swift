import Foundation
import TestSupport
import Torch
import XCTest

final class TensorTests: XCTestCase {
  func testCreationFillsShapesAndValues() {
    XCTAssertEqual(Tensor.zeros([2, 3]).scalars(as: Float.self), [0, 0, 0, 0, 0, 0])
    XCTAssertEqual(Tensor.ones([2]).scalars(as: Double.self), [1, 1])
    XCTAssertEqual(Tensor.full([2, 2], 7).scalars(as: Float.self), [7, 7, 7, 7])
    XCTAssertEqual(Tensor.arange(0, 5).scalars(as: Int64.self), [0, 1, 2, 3, 4])
    XCTAssertEqual(Tensor.arange(1, 2, step: 0.25, dtype: .float64).scalars(as: Double.self), [1, 1.25, 1.5, 1.75])
    XCTAssertEqual(Tensor.linspace(0, 1, count: 5).scalars(as: Float.self), [0, 0.25, 0.5, 0.75, 1])
    XCTAssertEqual(Tensor.eye(2).scalars(as: Float.self), [1, 0, 0, 1])
    let t = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    XCTAssertEqual(t.shape, [2, 3])
    XCTAssertEqual(t.rank, 2)
    XCTAssertEqual(t.count, 6)
    XCTAssertEqual(t.dtype, .float32)
    XCTAssertEqual(t.device, .cpu)
    XCTAssertEqual(Tensor(scalar: 2.5, dtype: .float64).item(), 2.5)
    XCTAssertEqual(Tensor([true, false, true], shape: [3]).scalars(as: UInt8.self), [1, 0, 1])
  }

  func testEveryDTypeConvertsBothWays() {
    let values: [Float] = [0, 1, 2, 3]
    for dtype in DType.allCases {
      let converted = Tensor(values).to(dtype)
      XCTAssertEqual(converted.dtype, dtype)
      let expected: [Float] = dtype == .bool ? [0, 1, 1, 1] : values
      XCTAssertEqual(converted.scalars(as: Float.self), expected, "\(dtype)")
    }
  }

  func testUnavailableDevicesAreRefusedWithAReason() throws {
    XCTAssertNoThrow(try Device.cpu.checkAvailable())
    XCTAssertEqual(Device("cuda:1"), .cuda(1))
    XCTAssertNil(Device("gpu"))
    if !Torch.cudaIsAvailable {
      XCTAssertThrowsError(try Device.cuda(0).checkAvailable()) { XCTAssertTrue("\($0)".contains("no usable CUDA"), "\($0)") }
    } else {
      XCTAssertThrowsError(try Device.cuda(Torch.cudaDeviceCount).checkAvailable())
      let moved = Tensor.ones([2]).to(.cuda(0))
      XCTAssertEqual(moved.device, .cuda(0))
      XCTAssertEqual((moved * 2).to(.cpu).scalars(as: Float.self), [2, 2])
    }
  }

  func testSeededGeneratorsRepeatTheirSequences() {
    let a = Tensor.randn([5], generator: Generator(seed: 3))
    let b = Tensor.randn([5], generator: Generator(seed: 3))
    let c = Tensor.randn([5], generator: Generator(seed: 4))
    XCTAssertTrue(a.equals(b))
    XCTAssertFalse(a.equals(c))
    let u = Tensor.rand([1000], generator: Generator(seed: 1))
    XCTAssertGreaterThanOrEqual(u.min().item(), 0)
    XCTAssertLessThan(u.max().item(), 1)
    let r = Tensor.randint(3..<7, [1000], generator: Generator(seed: 1))
    XCTAssertEqual(r.min().itemInt(), 3)
    XCTAssertEqual(r.max().itemInt(), 6)
    XCTAssertEqual(Tensor.randperm(6, generator: Generator(seed: 2)).sorted().values.scalars(as: Int64.self), [0, 1, 2, 3, 4, 5])
  }

  func testGeneratorStateRestoresTheSequence() {
    let generator = Generator(seed: 11)
    _ = Tensor.randn([3], generator: generator)
    let saved = generator.state
    let first = Tensor.randn([4], generator: generator)
    generator.state = saved
    XCTAssertTrue(first.equals(Tensor.randn([4], generator: generator)))
  }

  func testShapeOperations() {
    let t = Tensor.arange(0, 24, dtype: .float32).reshaped([2, 3, 4])
    XCTAssertEqual(t.permuted([2, 0, 1]).shape, [4, 2, 3])
    XCTAssertEqual(t.transposed(0, 2).shape, [4, 3, 2])
    XCTAssertEqual(t.flattened(from: 1).shape, [2, 12])
    XCTAssertEqual(t.unsqueezed(1).shape, [2, 1, 3, 4])
    XCTAssertEqual(t.unsqueezed(1).squeezed().shape, [2, 3, 4])
    XCTAssertEqual(t.unsqueezed(0).squeezed(0).shape, [2, 3, 4])
    XCTAssertEqual(Tensor.ones([3, 1]).expanded([3, 4]).shape, [3, 4])
    XCTAssertEqual(Tensor([1, 2] as [Float]).repeated([2]).scalars(as: Float.self), [1, 2, 1, 2])
    XCTAssertEqual(t.view([6, 4]).shape, [6, 4])
    XCTAssertEqual(Tensor.cat([t, t], dim: 1).shape, [2, 6, 4])
    XCTAssertEqual(Tensor.stack([t, t], dim: 0).shape, [2, 2, 3, 4])
    XCTAssertEqual(t.split(size: 3, dim: 2).map(\.shape), [[2, 3, 3], [2, 3, 1]])
    XCTAssertEqual(t.chunk(2, dim: 2).map(\.shape), [[2, 3, 2], [2, 3, 2]])
    XCTAssertEqual(t.narrow(dim: 1, start: 1, length: 2).shape, [2, 2, 4])
    XCTAssertEqual(t[1][2].scalars(as: Float.self), [20, 21, 22, 23])
    XCTAssertEqual(t[0..<1].shape, [1, 3, 4])
    XCTAssertEqual(t.slice(dim: 2, 0..<4, step: 2)[0][0].scalars(as: Float.self), [0, 2])
    let row = Tensor([10, 20, 30, 40] as [Float])
    XCTAssertEqual(row.indexSelect(dim: 0, index: Tensor([3, 0] as [Int64])).scalars(as: Float.self), [40, 10])
    XCTAssertEqual(row.flipped([0]).scalars(as: Float.self), [40, 30, 20, 10])
    XCTAssertEqual(row.rolled([1], dims: [0]).scalars(as: Float.self), [40, 10, 20, 30])
    XCTAssertFalse(t.transposed(0, 1).isContiguous)
    XCTAssertTrue(t.transposed(0, 1).contiguous().isContiguous)
  }

  func testGatherScatterMaskAndWhere() {
    let t = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let index = Tensor([1, 0, 0, 0] as [Int64], shape: [2, 2])
    XCTAssertEqual(t.gather(dim: 1, index: index).scalars(as: Float.self), [2, 1, 3, 3])
    let zeros = Tensor.zeros([2, 2])
    XCTAssertEqual(
      zeros.scattering(dim: 1, index: Tensor([1, 0] as [Int64], shape: [2, 1]), source: Tensor.ones([2, 1]))
        .scalars(as: Float.self), [0, 1, 1, 0])
    XCTAssertEqual(
      zeros.scatterAdding(dim: 1, index: Tensor([1, 1] as [Int64], shape: [1, 2]), source: Tensor.ones([1, 2]))
        .scalars(as: Float.self), [0, 2, 0, 0])
    let mask = t .> 2
    XCTAssertEqual(t.maskedSelect(mask).scalars(as: Float.self), [3, 4])
    XCTAssertEqual(t.maskedFill(mask, with: 0).scalars(as: Float.self), [1, 2, 0, 0])
    XCTAssertEqual(Tensor.where(mask, t, -t).scalars(as: Float.self), [-1, -2, 3, 4])
    XCTAssertEqual((.!mask .& (t .>= 2)).scalars(as: UInt8.self), [0, 1, 0, 0])
  }

  func testArithmeticBroadcastsAndPromotesLikePyTorch() {
    let a = Tensor([1, 2, 3] as [Float], shape: [3, 1])
    let b = Tensor([10, 20] as [Float], shape: [1, 2])
    XCTAssertEqual((a + b).scalars(as: Float.self), [11, 21, 12, 22, 13, 23])
    XCTAssertEqual((a * b).shape, [3, 2])
    XCTAssertEqual((b - a)[0].scalars(as: Float.self), [9, 19])
    XCTAssertEqual((b / 10).scalars(as: Float.self), [1, 2])
    XCTAssertEqual((1 - b).scalars(as: Float.self), [-9, -19])
    XCTAssertEqual((20 / b).scalars(as: Float.self), [2, 1])
    XCTAssertEqual((-b).scalars(as: Float.self), [-10, -20])
    // A whole number added to an integer tensor keeps it integral, as Python's `labels + 1`.
    XCTAssertEqual((Tensor([1, 2] as [Int64]) + 1).dtype, .int64)
    XCTAssertEqual((Tensor([1, 2] as [Int64]) * 0.5).dtype, .float32)
    XCTAssertEqual(b.pow(2).scalars(as: Float.self), [100, 400])
    XCTAssertEqual(Tensor([-7, 7] as [Float]).remainder(3).scalars(as: Float.self), [2, 1])
    let m = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    XCTAssertEqual(m.matmul(m).scalars(as: Float.self), [7, 10, 15, 22])
    XCTAssertEqual(Tensor.addmm(Tensor.ones([2]), m, m).scalars(as: Float.self), [8, 11, 16, 23])
    XCTAssertEqual((m .== m.t).scalars(as: UInt8.self), [1, 0, 0, 1])
  }

  func testElementwiseFunctions() {
    let x = Tensor([-2, -0.5, 0, 0.5, 2] as [Double])
    func check(_ y: Tensor, _ f: (Double) -> Double, _ name: String) {
      for (value, input) in zip(y.scalars(as: Double.self), x.scalars(as: Double.self)) {
        XCTAssertEqual(value, f(input), accuracy: 1e-12, "\(name)(\(input))")
      }
    }
    check(x.exp(), Foundation.exp, "exp")
    check(x.abs(), Swift.abs, "abs")
    check(x.tanh(), Foundation.tanh, "tanh")
    check(x.sigmoid(), { 1 / (1 + Foundation.exp(-$0)) }, "sigmoid")
    check(x.relu(), { Swift.max(0, $0) }, "relu")
    check(x.leakyRelu(slope: 0.2), { $0 > 0 ? $0 : 0.2 * $0 }, "leaky relu")
    check(x.softplus(), { Foundation.log(1 + Foundation.exp($0)) }, "softplus")
    check(x.gelu(), { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }, "gelu")
    check(x.sin(), Foundation.sin, "sin")
    check(x.cos(), Foundation.cos, "cos")
    check(x.floor(), Foundation.floor, "floor")
    check(x.sign(), { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }, "sign")
    check(x.clamped(min: -1, max: 1), { Swift.min(1, Swift.max(-1, $0)) }, "clamp")
    check(x.abs().sqrt(), { Swift.abs($0).squareRoot() }, "sqrt")
    check((x.abs() + 1).log(), { Foundation.log(Swift.abs($0) + 1) }, "log")
    XCTAssertEqual(Tensor([0.5, 1.5, 2.5, -0.5] as [Double]).round().scalars(as: Double.self), [0, 2, 2, -0], "round half to even")
  }

  func testReductions() {
    let t = Tensor([3, 1, 4, 1, 5, 9] as [Float], shape: [2, 3])
    XCTAssertEqual(t.sum().item(), 23)
    XCTAssertEqual(t.sum(dim: 1).scalars(as: Float.self), [8, 15])
    XCTAssertEqual(t.mean(dims: [0], keepDim: true).shape, [1, 3])
    XCTAssertEqual(t.max().item(), 9)
    XCTAssertEqual(t.min().item(), 1)
    let (values, indices) = t.max(dim: 1)
    XCTAssertEqual(values.scalars(as: Float.self), [4, 9])
    XCTAssertEqual(indices.scalars(as: Int64.self), [2, 2])
    XCTAssertEqual(t.min(dim: 0).indices.scalars(as: Int64.self), [1, 0, 0])
    XCTAssertEqual(t.argmax(dim: 0).scalars(as: Int64.self), [0, 1, 1])
    XCTAssertEqual(t.argmin(dim: 1).scalars(as: Int64.self), [1, 0])
    let x = Tensor([1, 2, 3, 4] as [Double])
    XCTAssertEqual(x.variance().item(), 5.0 / 3.0, accuracy: 1e-12)
    XCTAssertEqual(x.variance(unbiased: false).item(), 1.25, accuracy: 1e-12)
    XCTAssertEqual(x.standardDeviation().item(), (5.0 / 3.0).squareRoot(), accuracy: 1e-12)
    XCTAssertEqual(x.norm().item(), 30.0.squareRoot(), accuracy: 1e-12)
    XCTAssertEqual(x.norm(p: 1).item(), 10, accuracy: 1e-12)
    XCTAssertEqual(x.logsumexp().item(), Foundation.log([1.0, 2, 3, 4].map(Foundation.exp).reduce(0, +)), accuracy: 1e-12)
    XCTAssertEqual(x.prod().item(), 24)
    XCTAssertEqual(x.cumsum(dim: 0).scalars(as: Double.self), [1, 3, 6, 10])
    let top = t.topk(2, dim: 1)
    XCTAssertEqual(top.values.scalars(as: Float.self), [4, 3, 9, 5])
    XCTAssertEqual(top.indices.scalars(as: Int64.self), [2, 0, 2, 1])
    let sorted = t.sorted(dim: 1, descending: true)
    XCTAssertEqual(sorted.values.scalars(as: Float.self), [4, 3, 1, 9, 5, 1])
  }

  func testFunctionalLayersMatchHandComputedValues() {
    // A 1×1×3×3 image, a 2×2 kernel of ones: each output sums a 2×2 window.
    let image = Tensor.arange(0, 9, dtype: .float32).reshaped([1, 1, 3, 3])
    XCTAssertEqual(image.conv2d(weight: Tensor.ones([1, 1, 2, 2])).scalars(as: Float.self), [8, 12, 20, 24])
    XCTAssertEqual(image.avgPool2d(kernel: 2, stride: 1).scalars(as: Float.self), [2, 3, 5, 6])
    XCTAssertEqual(image.maxPool2d(kernel: 2, stride: 1).scalars(as: Float.self), [4, 5, 7, 8])
    XCTAssertEqual(image.adaptiveAvgPool2d((1, 1)).item(), 4)
    XCTAssertEqual(image.upsampleNearest(scale: 2).shape, [1, 1, 6, 6])
    XCTAssertEqual(image.upsampleBilinear(to: (5, 5), alignCorners: true)[0][0][0].scalars(as: Float.self), [0, 0.5, 1, 1.5, 2])
    XCTAssertEqual(image.padded([1, 1, 0, 0]).shape, [1, 1, 3, 5])
    XCTAssertEqual(image.padded([1, 0, 0, 0], mode: .replicate)[0][0][0].scalars(as: Float.self), [0, 0, 1, 2])
    XCTAssertEqual(
      Tensor.ones([1, 1, 1, 1]).convTranspose2d(weight: Tensor.ones([1, 1, 2, 2]), stride: 2).shape, [1, 1, 2, 2])
    let logits = Tensor([1, 2, 3] as [Double], shape: [1, 3])
    let softmax = logits.softmax(dim: 1).scalars(as: Double.self)
    XCTAssertEqual(softmax.reduce(0, +), 1, accuracy: 1e-12)
    XCTAssertEqual(logits.logSoftmax(dim: 1).exp().scalars(as: Double.self)[2], softmax[2], accuracy: 1e-12)
    let table = Tensor([0, 1, 10, 11, 20, 21] as [Float], shape: [3, 2])
    XCTAssertEqual(table.embedding(Tensor([2, 0] as [Int64])).scalars(as: Float.self), [20, 21, 0, 1])
    XCTAssertEqual(Tensor([1, 0] as [Int64]).oneHot(classes: 3).scalars(as: Int64.self), [0, 1, 0, 1, 0, 0])
    XCTAssertEqual(Tensor.ones([1000]).dropout(0.5, training: false).sum().item(), 1000)
    let dropped = Tensor.ones([10000]).dropout(0.5, training: true)
    XCTAssertEqual(dropped.mean().item(), 1, accuracy: 0.1)
  }

  func testLossesMatchTheirDefinitions() {
    let logits = Tensor([2, 0, 0, 0, 3, 0] as [Double], shape: [2, 3])
    let targets = Tensor([0, 1] as [Int64])
    let logp = logits.logSoftmax(dim: 1).scalars(as: Double.self)
    let expected = -(logp[0] + logp[4]) / 2
    XCTAssertEqual(Loss.crossEntropy(logits, targets).item(), expected, accuracy: 1e-12)
    XCTAssertEqual(Loss.nll(logits.logSoftmax(dim: 1), targets).item(), expected, accuracy: 1e-12)
    // Label smoothing ε: (1-ε)·CE + ε·mean over classes of -log p.
    let smoothing = 0.1
    let uniform = -(logp[0...2].reduce(0, +) + logp[3...5].reduce(0, +)) / 6
    XCTAssertEqual(
      Loss.crossEntropy(logits, targets, labelSmoothing: smoothing).item(),
      (1 - smoothing) * expected + smoothing * uniform, accuracy: 1e-12)
    XCTAssertEqual(Loss.crossEntropy(logits, targets, reduction: .none).shape, [2])
    let a = Tensor([0, 1, 4] as [Double])
    let b = Tensor([0, 0, 0] as [Double])
    XCTAssertEqual(Loss.mse(a, b).item(), 17.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(Loss.l1(a, b, reduction: .sum).item(), 5, accuracy: 1e-12)
    XCTAssertEqual(Loss.smoothL1(a, b, beta: 1).item(), (0 + 0.5 + 3.5) / 3, accuracy: 1e-12)
    let z = Tensor([0.3] as [Double])
    XCTAssertEqual(
      Loss.binaryCrossEntropyWithLogits(z, Tensor([1] as [Double])).item(),
      -Foundation.log(1 / (1 + Foundation.exp(-0.3))), accuracy: 1e-12)
  }

  func testNormalisationFunctions() {
    let x = Tensor.randn([4, 6, 3, 3], generator: Generator(seed: 1), dtype: .float64)
    let batch = x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
    XCTAssertEqual(batch.mean(dims: [0, 2, 3]).abs().max().item(), 0, accuracy: 1e-10)
    let group = x.groupNorm(groups: 3)
    XCTAssertEqual(group.reshaped([4, 3, -1]).mean(dim: 2).abs().max().item(), 0, accuracy: 1e-10)
    let layer = x.layerNorm(normalizedShape: [3, 3])
    XCTAssertEqual(layer.variance(dims: [2, 3], unbiased: false).mean().item(), 1, accuracy: 1e-3)
  }

  func testLinearAlgebra() {
    let m = Tensor([3, 0, 0, 4] as [Double], shape: [2, 2])
    XCTAssertEqual(m.singularValues().scalars(as: Double.self), [4, 3])
    let a = Tensor.randn([5, 3], generator: Generator(seed: 2), dtype: .float64)
    let (q, r) = a.qr()
    assertClose(q.matmul(r), a, atol: 1e-12)
    assertClose(q.t.matmul(q), Tensor.eye(3, dtype: .float64), atol: 1e-12)
    XCTAssertEqual(Tensor([1, 2] as [Float]).outer(Tensor([3, 4] as [Float])).scalars(as: Float.self), [3, 4, 6, 8])
  }

  func testInPlaceUpdates() {
    let t = Tensor([1, 2] as [Double])
    t.addInPlace(Tensor([1, 1] as [Double]), alpha: 2)
    XCTAssertEqual(t.scalars(as: Double.self), [3, 4])
    t.multiplyInPlace(2)
    t.addProductInPlace(Tensor([1, 1] as [Double]), Tensor([2, 3] as [Double]), value: 0.5)
    XCTAssertEqual(t.scalars(as: Double.self), [7, 9.5])
    t.lerpInPlace(toward: Tensor([17, 9.5] as [Double]), weight: 0.5)
    XCTAssertEqual(t.scalars(as: Double.self), [12, 9.5])
    t.fill(4)
    t.sqrtInPlace()
    XCTAssertEqual(t.scalars(as: Double.self), [2, 2])
    t.zero()
    XCTAssertEqual(t.scalars(as: Double.self), [0, 0])
    let data = Tensor([1, 2] as [Float])
    data.replaceData(with: Tensor([5, 6, 7] as [Double]))
    XCTAssertEqual(data.dtype, .float64)
    XCTAssertEqual(data.shape, [3])
  }
}
