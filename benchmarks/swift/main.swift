// afterimage-bench: the Swift side of the benchmark harness (benchmarks/run).
//
// Two measurements, each printed as one JSON line on standard output:
//
//   afterimage-bench step --repeats N --warmup W [--threads T] [--seed S]
//     Times N training steps (after W untimed ones) of a small conv generator, batch 64.
//     {"impl":"swift","params":P,"step_times_s":[...],"first_loss":L, ...}
//
//   afterimage-bench overhead --count N [--threads T]
//     Times N calls of `a + b` on two 1-element float tensors (after a warm-up).
//     {"impl":"swift","op_overhead_us":U, ...}
//
// benchmarks/peer/step.py is the same program in Python PyTorch; keep the two in step.
import Dispatch
import Foundation
import Torch

// MARK: - The model

/// BatchNorm → ReLU → nearest 2× upsampling → 3×3 convolution: doubles the resolution.
final class UpBlock: Module, Layer {
  @Child var bn: BatchNorm2d
  @Child var conv: Conv2d

  init(_ inputChannels: Int, _ outputChannels: Int) {
    bn = BatchNorm2d(inputChannels)
    conv = Conv2d(inputChannels, outputChannels, kernelSize: 3, padding: 1)
    super.init()
  }

  func callAsFunction(_ x: Tensor) -> Tensor {
    // [B, Cin, H, W] → [B, Cin, 2H, 2W] → [B, Cout, 2H, 2W]
    conv(bn(x).relu().upsampleNearest(scale: 2))
  }
}

/// A small DCGAN-style generator: z [B, 128] → image [B, 3, 32, 32] in (-1, 1).
/// Layers are built in the same order as the Python peer's, so the same seed gives the same
/// weights (both draw from libtorch's global generator).
final class ConvGenerator: Module, Layer {
  static let latentSize = 128
  @Child var fc: Linear
  @Child var blocks: Sequential
  @Child var bnOut: BatchNorm2d  // bn_out
  @Child var convOut: Conv2d  // conv_out

  override init() {
    fc = Linear(Self.latentSize, 4 * 4 * 256)
    blocks = Sequential(UpBlock(256, 128), UpBlock(128, 64), UpBlock(64, 32))
    _bnOut = Child(wrappedValue: BatchNorm2d(32), "bn_out")
    _convOut = Child(wrappedValue: Conv2d(32, 3, kernelSize: 3, padding: 1), "conv_out")
    super.init()
  }

  func callAsFunction(_ z: Tensor) -> Tensor {
    let batch = z.shape[0]
    let seed = fc(z).view([batch, 256, 4, 4])  // [B, 256, 4, 4]
    let x = blocks(seed)  // [B, 128, 8, 8] → [B, 64, 16, 16] → [B, 32, 32, 32]
    return convOut(bnOut(x).relu()).tanh()  // [B, 3, 32, 32]
  }
}

// MARK: - Command line

/// The value after `--name` on the command line, or `fallback`.
func option(_ name: String, _ fallback: Int) -> Int {
  let arguments = CommandLine.arguments
  guard let index = arguments.firstIndex(of: "--\(name)"), index + 1 < arguments.count else {
    return fallback
  }
  guard let value = Int(arguments[index + 1]) else {
    FileHandle.standardError.write(Data("--\(name) needs an integer, got '\(arguments[index + 1])'\n".utf8))
    exit(2)
  }
  return value
}

/// Seconds elapsed while running `body`, from the monotonic clock.
func seconds(_ body: () -> Void) -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  body()
  return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Prints `object` as one line of JSON.
func printJSON(_ object: [String: Any]) {
  let data = try! JSONSerialization.data(
    withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
  print(String(decoding: data, as: UTF8.self))
}

/// The libtorch_cpu library mapped into this process, symlinks resolved (Linux), or "".
func loadedLibtorchPath() -> String {
  guard let folder = Torch.libraryFolder else { return "" }
  return URL(fileURLWithPath: folder).appendingPathComponent("libtorch_cpu.so").resolvingSymlinksInPath().path
}

/// The settings every measurement reports, so the harness can check both sides ran alike.
func environmentFields() -> [String: Any] {
  [
    "threads": Torch.threadCount,
    "libtorch": Torch.version,
    "libtorch_path": loadedLibtorchPath(),
    "blas": Torch.loadedBLAS ?? Torch.buildInfo.blas.map { "\($0) (libtorch's)" } ?? "",
    "blas_one_thread": Torch.blasLimitedToOneThread,
  ]
}

// MARK: - Measurements

/// Times `repeats` training steps after `warmup` untimed ones.
func measureSteps(repeats: Int, warmup: Int, seed: Int) {
  Torch.manualSeed(UInt64(seed))
  let batch = 64
  let model = ConvGenerator()  // weights from the global generator, as in the peer
  let z = Tensor.randn([batch, ConvGenerator.latentSize])  // [64, 128], fixed
  let target = Tensor.rand([batch, 3, 32, 32]) * 2 - 1  // [64, 3, 32, 32] in [-1, 1), fixed
  let optimizer = Adam(model.namedParameters(), learningRate: 1e-4)

  var firstLoss: Double?
  func step() {
    let output = model(z)  // [64, 3, 32, 32]
    let loss = Loss.l1(output, target)
    optimizer.zeroGrad()
    loss.backward()
    optimizer.step()
    if firstLoss == nil { firstLoss = loss.item() }
  }

  for _ in 0..<warmup { step() }
  let times = (0..<repeats).map { _ in seconds(step) }
  var fields = environmentFields()
  fields["impl"] = "swift"
  fields["params"] = model.parameterCount
  fields["step_times_s"] = times
  fields["first_loss"] = firstLoss ?? Double.nan
  fields["peak_rss_mb"] = peakMemoryMB()
  printJSON(fields)
}

/// Times `count` calls of `a + b` on 1-element tensors: the cost of one op call, mostly overhead.
func measureOverhead(count: Int) {
  let a = Tensor([Float(1)], shape: [1])
  let b = Tensor([Float(2)], shape: [1])
  for _ in 0..<max(count / 10, 1000) { _ = a + b }  // warm-up
  let elapsed = seconds {
    for _ in 0..<count { _ = a + b }
  }
  var fields = environmentFields()
  fields["impl"] = "swift"
  fields["count"] = count
  fields["op_overhead_us"] = elapsed / Double(count) * 1e6
  fields["peak_rss_mb"] = peakMemoryMB()
  printJSON(fields)
}

let usage = """
  usage: afterimage-bench step [--repeats N] [--warmup W] [--threads T] [--seed S]
         afterimage-bench overhead [--count N] [--threads T]
         afterimage-bench inverter-first-step --weights FILE --batch FILE [--threads T]
         afterimage-bench inverter [--resolution R] [--channels C] [--batch-size B] [--ch CH] [--repeats N] [--warmup W]
         afterimage-bench reconstruct [--resolution R] [--channels C] [--batch-size B] [--ch CH] [--optimize-steps S]
         afterimage-bench classifier-standard|classifier-adversarial [--resolution R] [--channels C] [--batch-size B]
         afterimage-bench device-parity --device cuda[:N]
         afterimage-bench explorer [--inverter DIR] [--edits N] [--warmup W]
         afterimage-bench kernels [--repeats N]   (the fused batch norm + ReLU against aten's ops)
  The inverter, reconstruct and classifier measurements take --device cpu|cuda[:N] (default cpu).
  """

let command = CommandLine.arguments.dropFirst().first ?? ""
Torch.threadCount = option("threads", 2)
switch command {
case "step":
  measureSteps(repeats: option("repeats", 10), warmup: option("warmup", 3), seed: option("seed", 0))
case "overhead":
  measureOverhead(count: option("count", 200_000))
case "inverter-first-step":
  reportingErrors { try inverterFirstStep(weightsPath: stringOption("weights", ""), batchPath: stringOption("batch", "")) }
case "inverter":
  reportingErrors {
    try measureInverterTraining(
      resolution: option("resolution", 32), channels: option("channels", 1), batchSize: option("batch-size", 64), ch: option("ch", 16),
      repeats: option("repeats", 10), warmup: option("warmup", 3))
  }
case "reconstruct":
  reportingErrors {
    try measureReconstruction(
      resolution: option("resolution", 32), channels: option("channels", 1), batchSize: option("batch-size", 64), ch: option("ch", 16),
      repeats: option("repeats", 10), warmup: option("warmup", 3), optimizeSteps: option("optimize-steps", 200))
  }
case "explorer":
  reportingErrors {
    try measureExplorer(
      inverterPath: stringOption("inverter", "models/inverters/shapes-standard-fidelity"), edits: option("edits", 200), warmup: option("warmup", 10))
  }
case "device-parity":
  reportingErrors { try deviceParity() }
case "kernels":
  measureKernels(repeats: option("repeats", 30))
case "classifier-standard", "classifier-adversarial":
  reportingErrors {
    try measureClassifierStep(
      adversarial: command == "classifier-adversarial", resolution: option("resolution", 32), channels: option("channels", 1),
      batchSize: option("batch-size", 128), repeats: option("repeats", 10), warmup: option("warmup", 3))
  }
default:
  FileHandle.standardError.write(Data((usage + "\n").utf8))
  exit(2)
}
