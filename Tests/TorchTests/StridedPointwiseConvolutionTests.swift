import Foundation
import TestSupport
import Torch
import XCTest

/// oneDNN bug 6035 (`Workarounds.stridedPointwiseConvolution`): on CPUs whose oneDNN kernels are
/// AVX2's, the weight gradient of a strided 1×1 convolution in channels-last from fewer than 8
/// channels crashes, hangs or is wrong. Run these under `ONEDNN_MAX_CPU_ISA=AVX2` to get the AVX2
/// kernels on any x86 machine (.ci/run does).
final class StridedPointwiseConvolutionTests: XCTestCase {
  /// What one step of a small network computes: its gradients, and its weights after SGD.
  struct Step {
    var gradients: [String: Tensor]
    var weightsAfterStep: [String: Tensor]
  }

  /// A ResNet-style downsample: a 3×3 stride-2 main path and a 1×1 stride-2 shortcut from
  /// `channels` to 8, summed, then a random projection to a scalar; one SGD step (rate 0.1).
  /// The batch [32, channels, 32, 32] is the shape that crashes the AVX2 kernel.
  func trainingStep(channels: Int, dtype: DType, channelsLast: Bool) -> Step {
    let generator = Generator(seed: UInt64(channels))
    var tensors: [String: Tensor] = [
      "x": Tensor.randn([32, channels, 32, 32], generator: generator),
      "shortcut.weight": Tensor.randn([8, channels, 1, 1], generator: generator),
      "shortcut.bias": Tensor.randn([8], generator: generator),
      "main.weight": Tensor.randn([8, channels, 3, 3], generator: generator) * 0.3,
      "projection": Tensor.randn([32, 8, 16, 16], generator: generator),
    ]
    for (name, tensor) in tensors {
      var converted = tensor.to(dtype)
      if channelsLast && converted.shape.count == 4 { converted = converted.channelsLast() }
      converted.requiresGrad = name != "projection"
      tensors[name] = converted
    }
    let x = tensors["x"]!
    let main = x.conv2d(weight: tensors["main.weight"]!, stride: 2, padding: 1).relu()
    let shortcut = x.conv2d(weight: tensors["shortcut.weight"]!, bias: tensors["shortcut.bias"]!, stride: 2)
    let loss = ((main + shortcut) * tensors["projection"]!).sum()
    let names = ["x", "shortcut.weight", "shortcut.bias", "main.weight"]
    let gradients = Autograd.gradients(of: [loss], withRespectTo: names.map { tensors[$0]! })
    var step = Step(gradients: [:], weightsAfterStep: [:])
    for (name, gradient) in zip(names, gradients) {
      step.gradients[name] = gradient
      if name != "x" { step.weightsAfterStep[name] = withNoGrad { tensors[name]! - gradient * 0.1 } }
    }
    return step
  }

  /// The float64 NCHW reference, computed by aten's own convolution: float64 never reaches
  /// oneDNN, and the work-around is off for it.
  func reference(channels: Int) -> Step {
    let saved = Workarounds.stridedPointwiseConvolution
    defer { Workarounds.stridedPointwiseConvolution = saved }
    Workarounds.stridedPointwiseConvolution = false
    return trainingStep(channels: channels, dtype: .float64, channelsLast: false)
  }

  /// max |a − b| / max |b|: float32 against float64 is ~1e-7; the bug's gradients are off by ~1.
  func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    maxDifference(a, b) / max(b.abs().max().item(), 1e-30)
  }

  func assertStepMatchesReference(channels: Int, file: StaticString = #filePath, line: UInt = #line) {
    let expected = reference(channels: channels)
    let step = trainingStep(channels: channels, dtype: .float32, channelsLast: true)
    for (name, gradient) in step.gradients {
      let error = relativeError(gradient, expected.gradients[name]!)
      XCTAssertLessThan(error, 1e-4, "\(channels) channels: the gradient of \(name) is off by \(error) of its largest value", file: file, line: line)
    }
    for (name, weight) in step.weightsAfterStep {
      let error = relativeError(weight, expected.weightsAfterStep[name]!)
      XCTAssertLessThan(error, 1e-5, "\(channels) channels: \(name) after the step is off by \(error)", file: file, line: line)
    }
  }

  /// With the work-around as this machine needs it (on under AVX2 kernels, off otherwise).
  func testAChannelsLastStepThroughAStridedPointwiseConvolutionMatchesFloat64() {
    for channels in [4, 5, 7, 8, 12] { assertStepMatchesReference(channels: channels) }
  }

  /// With the work-around forced on, so the rewritten path runs on every machine.
  func testTheRewrittenConvolutionMatchesFloat64OnAnyCPU() {
    let saved = Workarounds.stridedPointwiseConvolution
    defer { Workarounds.stridedPointwiseConvolution = saved }
    Workarounds.stridedPointwiseConvolution = true
    for channels in [4, 5, 7] { assertStepMatchesReference(channels: channels) }
  }

  /// Slicing then convolving at stride 1 is the strided convolution, value for value and
  /// gradient for gradient, including sizes the stride does not divide.
  func testTheSliceAndStrideOneConvolutionIsTheStridedConvolution() {
    let saved = Workarounds.stridedPointwiseConvolution
    defer { Workarounds.stridedPointwiseConvolution = saved }
    for (height, width, stride, groups) in [(7, 9, 2, 1), (8, 8, 3, 1), (5, 6, 2, 2)] {
      let generator = Generator(seed: 3)
      let x = Tensor.randn([2, 6, height, width], generator: generator, dtype: .float64)
      let weight = Tensor.randn([4, 6 / groups, 1, 1], generator: generator, dtype: .float64)
      let bias = Tensor.randn([4], generator: generator, dtype: .float64)
      var results: [[Tensor]] = []
      for rewritten in [false, true] {
        Workarounds.stridedPointwiseConvolution = rewritten
        let inputs = [x, weight, bias].map { tensor -> Tensor in
          let leaf = tensor.detached()
          leaf.requiresGrad = true
          return leaf
        }
        let output = inputs[0].conv2d(weight: inputs[1], bias: inputs[2], stride: stride, groups: groups)
        results.append([output] + Autograd.gradients(of: [randomProjection(of: output)], withRespectTo: inputs))
      }
      XCTAssertEqual(results[0][0].shape, [2, 4, (height - 1) / stride + 1, (width - 1) / stride + 1])
      for (direct, rewritten) in zip(results[0], results[1]) {
        assertClose(direct, rewritten, atol: 1e-12, "\(height)×\(width), stride \(stride), \(groups) groups")
      }
      // And the rewritten path's gradients against finite differences.
      Workarounds.stridedPointwiseConvolution = true
      let leaves = [x, weight].map { $0.detached() }
      assertGradientsMatchFiniteDifferences(leaves) {
        randomProjection(of: leaves[0].conv2d(weight: leaves[1], bias: bias, stride: stride, groups: groups))
      }
    }
  }
}

/// The instruction set oneDNN dispatches to, as `afterimage doctor` reports it.
final class InstructionSetTests: XCTestCase {
  /// oneDNN's own report, from its verbose log (`isa:Intel AVX2`, …), in the project's Python
  /// (the same libtorch) with `environment` added.
  func oneDNNReport(environment: [String: String] = [:]) throws -> InstructionSet {
    let output = try runPythonCode(
      // A 3×3 convolution on a batch: PyTorch leaves tiny ones to its own kernels.
      "import torch; torch.nn.functional.conv2d(torch.randn(32, 4, 32, 32).to(memory_format=torch.channels_last), torch.randn(8, 4, 3, 3))",
      environment: environment.merging(["ONEDNN_VERBOSE": "1"]) { $1 })
    let line = try XCTUnwrap(output.split(separator: "\n").first { $0.contains(",isa:") }, output)
    let isa = String(line.split(separator: ":").last ?? "")
    if isa.contains("AMX") { return .amx }
    if isa.contains("AVX-512") { return .avx512 }
    if isa.contains("AVX2") { return .avx2 }
    if isa.contains("AVX") { return .avx }
    if isa.contains("SSE4.1") { return .sse41 }
    return .baseline
  }

  func testTheDispatchedInstructionSetIsOneDNNsOwn() throws {
    XCTAssertEqual(InstructionSet.oneDNNDispatches, try oneDNNReport())
    XCTAssertEqual(Workarounds.stridedPointwiseConvolution, InstructionSet.oneDNNDispatches == .avx2)
  }

  func testCapsAreReadAsOneDNNReadsThem() throws {
    for cap in ["AVX2", "avx2_vnni", "AVX", "SSE41", "AVX512_CORE", "DEFAULT"] {
      let read = try XCTUnwrap(InstructionSet.oneDNNCap(in: ["ONEDNN_MAX_CPU_ISA": cap]))
      let expected = read.tier.map { min($0, InstructionSet.ofThisCPU) } ?? InstructionSet.ofThisCPU
      XCTAssertEqual(expected, try oneDNNReport(environment: ["ONEDNN_MAX_CPU_ISA": cap]), cap)
    }
    XCTAssertEqual(InstructionSet.oneDNNCap(in: ["DNNL_MAX_CPU_ISA": "AVX"])?.tier, .avx, "the older name")
    XCTAssertEqual(InstructionSet(oneDNNName: "AVX10_1_512_AMX"), .amx)
    XCTAssertNil(InstructionSet(oneDNNName: "nonsense"))
  }
}
