import Foundation
import TestSupport
import Torch
import XCTest

/// The same network as `Tests/parity/parity_convnet.py`, built from Afterimage's layers.
final class ParityNet: Module, Layer {
  @Child var conv1 = Conv2d(3, 8, kernelSize: 3, padding: 1, spectralNorm: true)
  @Child var bn1 = BatchNorm2d(8)
  @Child var conv2 = Conv2d(8, 16, kernelSize: 3, stride: 2, padding: 1)
  @Child var up = ConvTranspose2d(16, 8, kernelSize: 4, stride: 2, padding: 1, spectralNorm: true)
  @Child var fc = Linear(8, 4, spectralNorm: true)

  func callAsFunction(_ x: Tensor) -> Tensor {
    var h = bn1(conv1(x)).relu()  // [N, 8, 8, 8]
    h = conv2(h).leakyRelu(slope: 0.2)  // [N, 16, 4, 4]
    h = up(h).relu().mean(dims: [2, 3])  // [N, 8]
    return fc(h)  // [N, 4]
  }
}

/// Numeric parity with PyTorch (Debian's python3-torch: the same libtorch).
final class ParityTests: XCTestCase {
  static var reference: Safetensors.File?

  /// Runs the Python reference once for all tests of this class.
  func pytorchRecord() throws -> [String: Tensor] {
    if let cached = Self.reference { return cached.dictionary }
    let directory = try temporaryDirectory()
    let url = directory.appendingPathComponent("reference.safetensors")
    try runPython("parity_convnet.py", [url.path])
    let file = try Safetensors.read(url)
    Self.reference = file
    return file.dictionary
  }

  func testConvNetMatchesPyTorchOverThreeAdamSteps() throws {
    let record = try pytorchRecord()
    let net = ParityNet()
    let initial = record.filter { $0.key.hasPrefix("init.") }
    try net.loadStateDict(Dictionary(uniqueKeysWithValues: initial.map { (String($0.key.dropFirst(5)), $0.value) }))
    let optimizer = Adam(net.namedParameters(), learningRate: 1e-2, beta1: 0.5, beta2: 0.999, eps: 1e-8, weightDecay: 1e-3)
    let x = record["x"]!
    let y = record["y"]!
    for step in 0..<3 {
      net.train()
      let logits = net(x)
      let loss = Loss.crossEntropy(logits, y, labelSmoothing: 0.1)
      optimizer.zeroGrad()
      loss.backward()
      assertClose(logits, record["step\(step).logits"]!, atol: 1e-5, "logits at step \(step)")
      assertClose(loss.reshaped([1]), record["step\(step).loss"]!, atol: 1e-5, "loss at step \(step)")
      for (name, parameter) in net.namedParameters() {
        assertClose(parameter.grad!, record["step\(step).grad.\(name)"]!, atol: 1e-5, "grad of \(name) at step \(step)")
      }
      optimizer.step()
    }
    var worstWeight = 0.0
    for (name, tensor) in net.stateDict() {
      assertClose(tensor, record["final.\(name)"]!, atol: 1e-5, "final \(name)")
      worstWeight = max(worstWeight, maxDifference(tensor, record["final.\(name)"]!))
    }
    net.eval()
    let evalLogits = withNoGrad { net(x) }
    assertClose(evalLogits, record["final.eval_logits"]!, atol: 1e-5, "evaluation-mode logits")
    print("parity: largest difference from PyTorch after 3 Adam steps: weights \(worstWeight), eval logits \(maxDifference(evalLogits, record["final.eval_logits"]!))")
  }

  func testSGDWithNesterovMomentumAndAdamWMatchPyTorch() throws {
    let record = try pytorchRecord()
    for kind in ["sgd", "adamw"] {
      let w = record["\(kind).w0"]!.clone().requiringGrad()
      let inputs = record["\(kind).inputs"]!
      let target = record["\(kind).target"]!
      let optimizer: Optimizer =
        kind == "sgd"
        ? SGD([("w", w)], learningRate: 0.1, momentum: 0.9, weightDecay: 1e-2, nesterov: true)
        : AdamW([("w", w)], learningRate: 0.05, beta1: 0.9, beta2: 0.99, weightDecay: 0.1)
      for _ in 0..<4 {
        optimizer.zeroGrad()
        (inputs.matmul(w) - target).pow(2).mean().backward()
        optimizer.step()
      }
      assertClose(w, record["\(kind).w4"]!, atol: 1e-6, kind)
    }
  }
}
