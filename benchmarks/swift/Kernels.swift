// The fused CPU kernels alone against the aten ops they replace (afterimage-bench kernels).
import Foundation
import Torch

/// The batch-norm shapes of the 32×32 inverter step and the classifier step: `[N, C, H, W]`, and
/// whether the scale and shift are per sample (BigGAN's conditional batch norm) and a residual
/// is added (a ResNet block's end).
let kernelShapes: [(shape: [Int], perSample: Bool, residual: Bool)] = [
  ([64, 16, 32, 32], true, false), ([64, 8, 32, 32], true, false), ([64, 32, 16, 16], true, false),
  ([128, 16, 16, 16], false, false), ([128, 32, 32, 32], false, true), ([128, 64, 8, 8], false, true),
]

/// For each shape: the best of `repeats` forward and backward times of `BatchNorm2d.relu`, fused
/// and composed from aten's ops (batch_norm, mul, add, relu), in training, channels-last.
/// Prints one JSON line: {"batch_norm_relu": [{"shape", "fused_forward_ms", "fused_backward_ms",
/// "aten_forward_ms", "aten_backward_ms"}, ...]}.
func measureKernels(repeats: Int) {
  var rows: [[String: Any]] = []
  for (shape, perSample, residual) in kernelShapes {
    let generator = Generator(seed: 1)
    let x = Tensor.randn(shape, generator: generator).channelsLast().requiringGrad()
    let scale = perSample ? (Tensor.randn([shape[0], shape[1]], generator: generator) * 0.1 + 1).requiringGrad() : nil
    let shift = perSample ? Tensor.randn([shape[0], shape[1]], generator: generator).requiringGrad() : nil
    let shortcut = residual ? Tensor.randn(shape, generator: generator).channelsLast().requiringGrad() : nil
    let gradient = Tensor.randn(shape, generator: generator).channelsLast()
    var row: [String: Any] = ["shape": shape, "per_sample": perSample, "residual": residual]
    for fused in [true, false] {
      let norm = BatchNorm2d(shape[1], affine: !perSample)
      norm.fused = fused
      var (forward, backward) = (Double.infinity, Double.infinity)
      for _ in 0..<repeats {
        var y: Tensor?
        forward = min(forward, seconds { y = norm.relu(x, scale: scale, shift: shift, plus: shortcut) })
        backward = min(backward, seconds { y!.backward(gradient: gradient) })
        for tensor in [x, scale, shift, shortcut].compactMap({ $0 }) { tensor.grad = nil }
      }
      let side = fused ? "fused" : "aten"
      row["\(side)_forward_ms"] = forward * 1e3
      row["\(side)_backward_ms"] = backward * 1e3
    }
    rows.append(row)
  }
  var fields = environmentFields()
  fields["impl"] = "swift"
  fields["mode"] = "kernels"
  fields["batch_norm_relu"] = rows
  printJSON(fields)
}
