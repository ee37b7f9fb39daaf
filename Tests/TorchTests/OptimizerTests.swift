import Foundation
import TestSupport
import Torch
import XCTest

final class OptimizerTests: XCTestCase {
  /// One quadratic problem: minimise ‖w − 3‖² from w = 0.
  func quadraticSteps(_ optimizer: Optimizer, _ w: Tensor, steps: Int) {
    for _ in 0..<steps {
      optimizer.zeroGrad()
      (w - 3).pow(2).sum().backward()
      optimizer.step()
    }
  }

  func testAdamFirstStepMovesEachWeightByTheLearningRate() {
    // After one step Adam's update is lr · g / (|g| + ε): the sign of the gradient times lr.
    let w = Tensor([0, 10] as [Double]).requiringGrad()
    let adam = Adam([("w", w)], learningRate: 0.1)
    quadraticSteps(adam, w, steps: 1)
    assertClose(w, Tensor([0.1, 9.9] as [Double]), atol: 1e-9)
    XCTAssertEqual(adam.stepCount, 1)
  }

  func testOptimizersConverge() {
    for make in [
      { (w: Tensor) -> Optimizer in Adam([("w", w)], learningRate: 0.1) },
      { SGD([("w", $0)], learningRate: 0.05, momentum: 0.9) },
      { SGD([("w", $0)], learningRate: 0.05, momentum: 0.9, nesterov: true) },
      { SGD([("w", $0)], learningRate: 0.1) },
    ] {
      let w = Tensor.zeros([3], dtype: .float64).requiringGrad()
      quadraticSteps(make(w), w, steps: 300)
      assertClose(w, Tensor.full([3], 3, dtype: .float64), atol: 1e-3)
    }
  }

  func testParametersWithoutGradientsAreLeftAlone() {
    let used = Tensor([0] as [Double]).requiringGrad()
    let unused = Tensor([5] as [Double]).requiringGrad()
    let adam = Adam([("used", used), ("unused", unused)], learningRate: 0.1)
    (used * 2).sum().backward()
    adam.step()
    XCTAssertEqual(unused.item(), 5)
    XCTAssertFalse(adam.stateTensors().map(\.name).contains("exp_avg.unused"))
  }

  func testSavedStateResumesExactly() throws {
    for kind in ["adam", "sgd"] {
      func make(_ w: Tensor) -> Optimizer {
        kind == "adam" ? Adam([("w", w)], learningRate: 0.05) : SGD([("w", w)], learningRate: 0.01, momentum: 0.9)
      }
      let straight = Tensor([0, 1, 2] as [Double]).requiringGrad()
      quadraticSteps(make(straight), straight, steps: 6)

      let resumed = Tensor([0, 1, 2] as [Double]).requiringGrad()
      let first = make(resumed)
      quadraticSteps(first, resumed, steps: 3)
      let directory = try temporaryDirectory()
      let url = directory.appendingPathComponent("optimizer.safetensors")
      try Safetensors.write(first.stateTensors(), to: url)
      let second = make(resumed)
      try second.loadState(try Safetensors.read(url).dictionary)
      XCTAssertEqual(second.stepCount, 3)
      quadraticSteps(second, resumed, steps: 3)
      XCTAssertTrue(resumed.equals(straight), "\(kind): \(resumed) vs \(straight)")
    }
  }

  func testLoadingMismatchedStateFails() {
    let w = Tensor([0, 1] as [Double]).requiringGrad()
    let adam = Adam([("w", w)])
    XCTAssertThrowsError(try adam.loadState(["exp_avg.w": Tensor.zeros([2])])) {
      XCTAssertTrue("\($0)".contains("no 'step'"), "\($0)")
    }
    XCTAssertThrowsError(try adam.loadState(["step": Tensor([Int64(1)]), "exp_avg.w": Tensor.zeros([3])])) {
      XCTAssertTrue("\($0)".contains("has shape [3]"), "\($0)")
    }
    let sgdState = ["step": Tensor([Int64(1)]), "momentum_buffer.w": Tensor.zeros([2])]
    XCTAssertThrowsError(try adam.loadState(sgdState)) { XCTAssertTrue("\($0)".contains("momentum_buffer.w"), "\($0)") }
  }

  func testLearningRateSchedules() {
    let cosine = CosineSchedule(base: 0.1, totalSteps: 100)
    XCTAssertEqual(cosine.learningRate(at: 0), 0.1, accuracy: 1e-12)
    XCTAssertEqual(cosine.learningRate(at: 50), 0.05, accuracy: 1e-12)
    XCTAssertEqual(cosine.learningRate(at: 100), 0, accuracy: 1e-12)
    XCTAssertEqual(cosine.learningRate(at: 150), 0, accuracy: 1e-12)
    let step = StepSchedule(base: 1, every: 10, gamma: 0.5)
    XCTAssertEqual([0, 9, 10, 25].map(step.learningRate(at:)), [1, 1, 0.5, 0.25])
    let warm = LinearWarmup(ConstantSchedule(0.2), warmupSteps: 4)
    XCTAssertEqual([0, 2, 4, 9].map(warm.learningRate(at:)), [0, 0.1, 0.2, 0.2])
  }

  // MARK: the fused kernels (CTorch's optimizers.cpp) against the per-tensor updates

  /// Two parameters (a matrix and a vector) after `steps` updates on a fixed least-squares
  /// problem, from the same start, by the optimizer `make` builds.
  func trainedWeights(dtype: DType, steps: Int, _ make: ([(name: String, tensor: Tensor)]) -> Optimizer) -> [Tensor] {
    let generator = Generator(seed: 11)
    let inputs = Tensor.randn([16, 5], generator: generator, dtype: dtype)
    let targets = Tensor.randn([16, 3], generator: generator, dtype: dtype)
    let weight = Tensor.randn([5, 3], generator: generator, dtype: dtype).requiringGrad()
    let bias = Tensor.randn([3], generator: generator, dtype: dtype).requiringGrad()
    let optimizer = make([("weight", weight), ("bias", bias)])
    for _ in 0..<steps {
      optimizer.zeroGrad()
      (inputs.matmul(weight) + bias - targets).pow(2).mean().backward()
      optimizer.step()
    }
    return [weight, bias]
  }

  func testFusedUpdatesEqualThePerTensorUpdates() {
    // Each optimizer the trainers use, with and without weight decay, fused and not: in
    // float64 the two agree to rounding, in float32 within a few ulp of the weights.
    let optimizers: [(String, (_ parameters: [(name: String, tensor: Tensor)], _ fused: Bool) -> Optimizer)] = [
      ("adam", { let o = Adam($0, learningRate: 0.05, beta1: 0.5, beta2: 0.99); o.fused = $1; return o }),
      ("adam+L2", { let o = Adam($0, learningRate: 0.05, weightDecay: 0.1); o.fused = $1; return o }),
      ("adamw", { let o = AdamW($0, learningRate: 0.05, weightDecay: 0.1); o.fused = $1; return o }),
      ("sgd", { let o = SGD($0, learningRate: 0.05); o.fused = $1; return o }),
      ("sgd+momentum", { let o = SGD($0, learningRate: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-2); o.fused = $1; return o }),
      ("sgd+nesterov", { let o = SGD($0, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4, nesterov: true); o.fused = $1; return o }),
    ]
    for (name, make) in optimizers {
      for (dtype, tolerance) in [(DType.float64, 1e-12), (.float32, 1e-5)] {
        let fused = trainedWeights(dtype: dtype, steps: 7) { make($0, true) }
        let perTensor = trainedWeights(dtype: dtype, steps: 7) { make($0, false) }
        let start = trainedWeights(dtype: dtype, steps: 0) { make($0, false) }
        for (a, b) in zip(fused, perTensor) { assertClose(a, b, atol: tolerance, "\(name) in \(dtype)") }
        XCTAssertGreaterThan((fused[0] - start[0]).abs().max().item(), 0.01, "\(name): the weights did not move")
      }
    }
  }

  func testFusedKernelsRun() throws {
    for (kernel, make) in [
      ("aten::_fused_adam_", { (p: [(name: String, tensor: Tensor)]) -> Optimizer in Adam(p) }),
      ("aten::_fused_adamw_", { AdamW($0) }),
      ("aten::_fused_sgd_", { SGD($0, learningRate: 0.1, momentum: 0.9, nesterov: true) }),
    ] {
      let w = Tensor.randn([4, 4]).requiringGrad()
      let optimizer = make([("w", w)])
      w.pow(2).sum().backward()
      let trace = try Torch.recordOperations { optimizer.step() }
      XCTAssertTrue(trace.contains(kernel), "\(kernel) did not run")
      XCTAssertFalse(trace.contains("aten::addcdiv_") || trace.contains("aten::lerp_"), "the per-tensor update ran too")
    }
  }

  func testFusedSGDResumesFromSavedBuffers() throws {
    // After a resume every buffer exists, so the kernel's first-step branch must be off.
    let straight = Tensor([0, 1, 2] as [Float]).requiringGrad()
    quadraticSteps(SGD([("w", straight)], learningRate: 0.01, momentum: 0.9), straight, steps: 4)
    let resumed = Tensor([0, 1, 2] as [Float]).requiringGrad()
    let first = SGD([("w", resumed)], learningRate: 0.01, momentum: 0.9)
    quadraticSteps(first, resumed, steps: 2)
    let second = SGD([("w", resumed)], learningRate: 0.01, momentum: 0.9)
    try second.loadState(Dictionary(uniqueKeysWithValues: first.stateTensors().map { ($0.name, $0.tensor) }))
    quadraticSteps(second, resumed, steps: 2)
    assertClose(resumed, straight, atol: 1e-6)
  }
}
