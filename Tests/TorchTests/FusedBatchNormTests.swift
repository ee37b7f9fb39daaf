import Foundation
import TestSupport
import Torch
import XCTest

/// The fused batch norm + ReLU kernel (CTorch's batch_norm.cpp) against the aten ops it replaces.
final class FusedBatchNormTests: XCTestCase {
  /// The cases the models run: an affine batch norm (ResNet), a conditional one with a scale and
  /// shift per sample (BigGAN's G), with and without a residual (a ResNet block's output), in
  /// training and evaluation, channels-first and channels-last, at sizes that are and are not
  /// multiples of the kernel's tiles.
  struct Case: CustomStringConvertible {
    var shape: [Int]
    var perSample: Bool
    var residual: Bool
    var training: Bool
    var channelsLast: Bool
    var description: String {
      "\(shape) \(perSample ? "conditional" : "affine")\(residual ? " + residual" : "") \(training ? "training" : "evaluation") \(channelsLast ? "channels-last" : "channels-first")"
    }
  }

  static let cases: [Case] = [
    Case(shape: [4, 3, 5, 7], perSample: false, residual: false, training: true, channelsLast: false),
    Case(shape: [4, 3, 5, 7], perSample: false, residual: true, training: true, channelsLast: true),
    Case(shape: [3, 16, 9, 9], perSample: true, residual: false, training: true, channelsLast: true),
    Case(shape: [3, 16, 9, 9], perSample: true, residual: false, training: false, channelsLast: true),
    Case(shape: [2, 40, 20, 20], perSample: false, residual: true, training: false, channelsLast: false),
    Case(shape: [2, 8, 24, 24], perSample: true, residual: true, training: true, channelsLast: false),
    Case(shape: [2, 5, 3], perSample: false, residual: false, training: true, channelsLast: false),
  ]

  /// x, scale, shift and residual for `c`, in float64, with a mean far from 0 so that the
  /// normalisation matters, and running statistics that are not the batch's.
  func inputs(_ c: Case, seed: UInt64) -> (x: Tensor, scale: Tensor, shift: Tensor, residual: Tensor?, runningMean: Tensor, runningVar: Tensor) {
    let generator = Generator(seed: seed)
    let channels = c.shape[1]
    var x = Tensor.randn(c.shape, generator: generator, dtype: .float64) * 1.5 + 0.8
    if c.channelsLast { x = x.channelsLast() }
    let parameterShape = c.perSample ? [c.shape[0], channels] : [channels]
    let scale = Tensor.randn(parameterShape, generator: generator, dtype: .float64) * 0.5 + 1
    let shift = Tensor.randn(parameterShape, generator: generator, dtype: .float64) * 0.5
    var residual: Tensor? = c.residual ? Tensor.randn(c.shape, generator: generator, dtype: .float64) : nil
    if c.channelsLast { residual = residual?.channelsLast() }
    let runningMean = Tensor.randn([channels], generator: generator, dtype: .float64) * 0.3
    let runningVar = Tensor.rand([channels], generator: generator, dtype: .float64) + 0.5
    return (x, scale, shift, residual, runningMean, runningVar)
  }

  /// The composition of aten ops the kernel replaces: batch_norm, the scale and shift, the
  /// residual, relu.
  func composed(_ x: Tensor, _ scale: Tensor, _ shift: Tensor, _ residual: Tensor?, runningMean: Tensor, runningVar: Tensor, training: Bool) -> Tensor {
    let perChannel = scale.rank == 1
    let broadcast = [perChannel ? 1 : x.shape[0], x.shape[1]] + Array(repeating: 1, count: x.rank - 2)
    let normalised = x.batchNorm(weight: nil, bias: nil, runningMean: runningMean, runningVar: runningVar, training: training, momentum: 0.1, eps: 1e-5)
    var z = normalised * scale.view(broadcast) + shift.view(broadcast)
    if let residual { z = z + residual }
    return z.relu()
  }

  /// The output, the gradients of x, scale, shift (and residual) for a random projection, and
  /// the running statistics after the call, all in float64, computed in `dtype`.
  func run(_ c: Case, dtype: DType, fused: Bool) -> [Tensor] {
    let v = inputs(c, seed: UInt64(c.shape.reduce(0, +)))
    let x = v.x.to(dtype).requiringGrad(), scale = v.scale.to(dtype).requiringGrad(), shift = v.shift.to(dtype).requiringGrad()
    let residual = v.residual?.to(dtype).requiringGrad()
    let (runningMean, runningVar) = (v.runningMean.to(dtype), v.runningVar.to(dtype))
    let out =
      fused
      ? x.batchNormRelu(scale: scale, shift: shift, residual: residual, runningMean: runningMean, runningVar: runningVar, training: c.training)
      : composed(x, scale, shift, residual, runningMean: runningMean, runningVar: runningVar, training: c.training)
    XCTAssertEqual(out.shape, c.shape)
    let differentiated = [x, scale, shift] + (residual.map { [$0] } ?? [])
    let gradients = Autograd.gradients(of: [randomProjection(of: out.to(.float64))], withRespectTo: differentiated)
    return ([out] + gradients + [runningMean, runningVar]).map { $0.to(.float64) }
  }

  func testFusedMatchesTheComposedOpsInFloat64AndIsAsAccurateInFloat32() {
    for c in Self.cases {
      let exact = run(c, dtype: .float64, fused: false)
      let fused64 = run(c, dtype: .float64, fused: true)
      let fused32 = run(c, dtype: .float32, fused: true)
      let aten32 = run(c, dtype: .float32, fused: false)
      for (index, truth) in exact.enumerated() {
        let scale = max(1, truth.abs().max().item())
        XCTAssertLessThan((fused64[index] - truth).abs().max().item(), 1e-11 * scale, "tensor \(index), \(c), float64")
        let (fusedError, atenError) = ((fused32[index] - truth).abs().max().item(), (aten32[index] - truth).abs().max().item())
        XCTAssertLessThan(fusedError, 4 * atenError + 1e-6 * scale, "tensor \(index), \(c), float32: aten's \(atenError)")
      }
    }
  }

  func testFusedKeepsTheLayoutOfItsInput() {
    let x = Tensor.randn([2, 8, 6, 6]).channelsLast()
    let out = x.batchNormRelu(scale: nil, shift: nil, runningMean: nil, runningVar: nil, training: true)
    // A channels-last tensor's copy to channels-last is itself; a channels-first one's is not.
    XCTAssertTrue(out.channelsLast().equals(out))
    XCTAssertEqual(out.stride(dim: 1), 1, "channels-last keeps the channels innermost")
    let first = Tensor.randn([2, 8, 6, 6]).batchNormRelu(scale: nil, shift: nil, runningMean: nil, runningVar: nil, training: true)
    XCTAssertEqual(first.stride(dim: 3), 1)
    XCTAssertEqual(first.stride(dim: 1), 36)
  }

  func testGradientsMatchFiniteDifferences() {
    for c in Self.cases where c.shape.reduce(1, *) < 2000 {
      let v = inputs(c, seed: 3)
      let differentiated = [v.x, v.scale, v.shift] + (v.residual.map { [$0] } ?? [])
      assertGradientsMatchFiniteDifferences(differentiated, tolerance: 1e-5) {
        randomProjection(
          of: v.x.batchNormRelu(
            scale: v.scale, shift: v.shift, residual: v.residual, runningMean: v.runningMean.clone(), runningVar: v.runningVar.clone(),
            training: c.training))
      }
    }
  }

  func testSecondDerivativesAreTheComposedOps() {
    // create_graph (a gradient penalty) differentiates the kernel's gradient again: the kernel
    // then differentiates aten's formulation, and so must agree with the composed ops.
    for c in Self.cases.prefix(4) {
      let v = inputs(c, seed: 5)
      let differentiated = [v.x, v.scale, v.shift] + (v.residual.map { [$0] } ?? [])
      func secondDerivatives(fused: Bool) -> [[Double]] {
        for input in differentiated { input.grad = nil; input.requiresGrad = true }
        let (mean, variance) = (v.runningMean.clone(), v.runningVar.clone())
        let out =
          fused
          ? v.x.batchNormRelu(scale: v.scale, shift: v.shift, residual: v.residual, runningMean: mean, runningVar: variance, training: c.training)
          : composed(v.x, v.scale, v.shift, v.residual, runningMean: mean, runningVar: variance, training: c.training)
        let first = Autograd.gradients(of: [randomProjection(of: out)], withRespectTo: differentiated, createGraph: true)
        let penalty = first.map { $0.pow(2).sum() }.reduce(Tensor.zeros([], dtype: .float64), +)
        return Autograd.gradients(of: [penalty], withRespectTo: differentiated, allowUnused: true).map { $0.scalars(as: Double.self) }
      }
      for (a, b) in zip(secondDerivatives(fused: true), secondDerivatives(fused: false)) { assertClose(a, b, atol: 1e-9) }
    }
  }

  func testBatchNormLayersRunTheKernelAndMatchTheirUnfusedSelves() throws {
    // BatchNorm2d.relu in training (running statistics updated alike) and in evaluation, with a
    // residual; the kernel is what runs.
    for training in [true, false] {
      func layer(fused: Bool) -> BatchNorm2d {
        let norm = BatchNorm2d(6)
        norm.convert(to: .float64)
        withNoGrad {
          norm.weight!.copy(from: Tensor.randn([6], generator: Generator(seed: 1), dtype: .float64) + 1)
          norm.bias!.copy(from: Tensor.randn([6], generator: Generator(seed: 2), dtype: .float64))
        }
        norm.fused = fused
        if !training { norm.eval() }
        return norm
      }
      let x = Tensor.randn([4, 6, 5, 5], generator: Generator(seed: 3), dtype: .float64).channelsLast()
      let residual = Tensor.randn([4, 6, 5, 5], generator: Generator(seed: 4), dtype: .float64)
      let (fused, unfused) = (layer(fused: true), layer(fused: false))
      let trace = try Torch.recordOperations { _ = withNoGrad { fused.relu(x, plus: residual) } }
      XCTAssertTrue(trace.contains("afterimage::batch_norm_relu"), "the fused kernel did not run")
      XCTAssertFalse(trace.contains("aten::native_batch_norm"), "aten's batch norm ran too")
      let unfusedTrace = try Torch.recordOperations { _ = withNoGrad { unfused.relu(x, plus: residual) } }
      XCTAssertFalse(unfusedTrace.contains("afterimage::batch_norm_relu"))
      assertClose(fused.relu(x, plus: residual), unfused.relu(x, plus: residual), atol: 1e-12)
      assertClose(fused.runningMean, unfused.runningMean, atol: 1e-12)
      assertClose(fused.runningVar, unfused.runningVar, atol: 1e-12)
      XCTAssertEqual(fused.batchesTracked.itemInt(), unfused.batchesTracked.itemInt())
    }
  }

  func testFrozenLayersGiveTheInputGradientOfTheComposedOps() {
    // A frozen classifier's batch norms (evaluation, weights taking no gradient) as the
    // inverter's perceptual pass and PGD run them: the backward skips the per-sample sums. Also
    // in training, with and without a residual.
    for (training, residual) in [(false, false), (false, true), (true, false)] {
      var gradients: [Tensor] = []
      for fused in [true, false] {
        let norm = BatchNorm2d(5)
        norm.convert(to: .float64)
        withNoGrad {
          norm.weight!.copy(from: Tensor.randn([5], generator: Generator(seed: 1), dtype: .float64) + 1)
          norm.bias!.copy(from: Tensor.randn([5], generator: Generator(seed: 2), dtype: .float64))
          norm.runningMean.copy(from: Tensor.randn([5], generator: Generator(seed: 5), dtype: .float64) * 0.2)
        }
        for parameter in [norm.weight!, norm.bias!] { parameter.requiresGrad = false }
        norm.fused = fused
        if !training { norm.eval() }
        let x = (Tensor.randn([3, 5, 4, 6], generator: Generator(seed: 3), dtype: .float64) + 0.3).channelsLast().requiringGrad()
        let shortcut = residual ? Tensor.randn([3, 5, 4, 6], generator: Generator(seed: 4), dtype: .float64) : nil
        gradients.append(Autograd.gradients(of: [randomProjection(of: norm.relu(x, plus: shortcut))], withRespectTo: [x])[0])
      }
      assertClose(gradients[0], gradients[1], atol: 1e-12, "training \(training), residual \(residual)")
      XCTAssertGreaterThan(gradients[0].abs().max().item(), 0.1)
    }
  }

  func testGroupedStatisticsRunTheKernelPerGroupAsDataParallelRanksDo() throws {
    // --batch-norm-groups 2 in one process must take the steps two ranks take with half the batch
    // each: the kernel runs on each group, bit for bit as on a rank, and the running statistics
    // take one update with the groups' mean statistics. Per-sample scale and shift, a residual.
    let generator = Generator(seed: 9)
    let x = Tensor.randn([6, 4, 3, 5], generator: generator, dtype: .float64).channelsLast()
    let scale = Tensor.randn([6, 4], generator: generator, dtype: .float64) * 0.3 + 1
    let shift = Tensor.randn([6, 4], generator: generator, dtype: .float64)
    let residual = Tensor.randn([6, 4, 3, 5], generator: generator, dtype: .float64)
    func layer(groups: Int, fused: Bool) -> BatchNorm2d {
      let norm = BatchNorm2d(4, affine: false)
      norm.convert(to: .float64)
      norm.statisticsGroups = groups
      norm.fused = fused
      return norm
    }
    let grouped = layer(groups: 2, fused: true)
    let trace = try Torch.recordOperations { _ = withNoGrad { layer(groups: 2, fused: true).relu(x, scale: scale, shift: shift, plus: residual) } }
    XCTAssertTrue(trace.contains("afterimage::batch_norm_relu"), "the kernel ran on the groups")
    let output = grouped.relu(x, scale: scale, shift: shift, plus: residual)
    // Each half as a rank computes it.
    let halves = (0..<2).map { half -> Tensor in
      let rank = layer(groups: 1, fused: true)
      func cut(_ t: Tensor) -> Tensor { t.narrow(dim: 0, start: 3 * half, length: 3) }
      return rank.relu(cut(x), scale: cut(scale), shift: cut(shift), plus: cut(residual))
    }
    XCTAssertTrue(output.equals(Tensor.cat(halves, dim: 0)), "the groups' outputs are the ranks'")
    // The same as aten's grouped path, output and running statistics.
    let composed = layer(groups: 2, fused: false)
    assertClose(output, composed.relu(x, scale: scale, shift: shift, plus: residual), atol: 1e-12)
    assertClose(grouped.runningMean, composed.runningMean, atol: 1e-7)
    assertClose(grouped.runningVar, composed.runningVar, atol: 1e-7)
    XCTAssertEqual(grouped.batchesTracked.itemInt(), 1)
  }

  func testHalfPrecisionFallsBackToAten() {
    XCTAssertFalse(Tensor.randn([4, 4, 3, 3]).to(.float16).supportsFusedKernels)
    XCTAssertTrue(Tensor.randn([4, 4, 3, 3]).supportsFusedKernels)
  }

  func testMismatchedInputsGetAnError() {
    let x = Tensor.randn([2, 4, 3, 3])
    func message(_ body: () -> Tensor) -> String {
      do {
        _ = try catchingTorchErrors(body)
        return "no error"
      } catch { return "\(error)" }
    }
    XCTAssertTrue(message { x.batchNormRelu(scale: Tensor.ones([3]), shift: nil, runningMean: nil, runningVar: nil, training: true) }.contains("must be [C] or [N, C]"))
    XCTAssertTrue(message { x.batchNormRelu(scale: nil, shift: nil, residual: Tensor.ones([2, 4, 3]), runningMean: nil, runningVar: nil, training: true) }.contains("residual must have the input's shape"))
    XCTAssertTrue(message { x.batchNormRelu(scale: nil, shift: nil, runningMean: nil, runningVar: nil, training: false) }.contains("evaluation needs the running statistics"))
    XCTAssertTrue(message { Tensor.randn([1, 4, 1, 1]).batchNormRelu(scale: nil, shift: nil, runningMean: nil, runningVar: nil, training: true) }.contains("more than 1 value per channel"))
    XCTAssertTrue(message { x.to(.float16).batchNormRelu(scale: nil, shift: nil, runningMean: nil, runningVar: nil, training: true) }.contains("float32 or float64"))
  }
}
