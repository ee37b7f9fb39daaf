import Foundation
import Torch

/// The two file formats a user's PyTorch 2.x classifier can come in.
public enum ImportedModelFormat: String, Sendable {
  /// `torch.jit.trace` or `torch.jit.script`, then `torch.jit.save`: differentiable, with its
  /// submodules' outputs as feature maps.
  case torchscript
  /// `torch.export.export`, then `torch._inductor.aoti_compile_and_package`: a compiled `.pt2`
  /// package, for models TorchScript cannot hold; forward only.
  case pt2

  var architecture: ClassifierArchitecture { self == .pt2 ? .pt2 : .torchscript }
  var fileName: String { self == .pt2 ? "model.pt2" : "model.pt" }
}

/// Wraps a user's PyTorch classifier as a run directory that every command accepting a
/// classifier accepts. The model is probed before anything is written.
public enum TorchScriptImport {
  /// Copies `modelPath` into `run` with a config describing its input and classes, after
  /// checking on `device` that a batch `[2, C, H, W]` gives logits `[2, classes]`.
  public static func importModel(
    modelPath: String, format: ImportedModelFormat = .torchscript, channels: Int, resolution: Int, classNames: [String],
    normalization: Normalization, run: RunDirectory, command: String? = nil, device: Device = .cpu
  ) throws -> any ImageClassifier {
    guard normalization.mean.count == channels else {
      throw RunError("--mean and --std need \(channels) values (one per input channel), got \(normalization.mean.count)")
    }
    guard !FileManager.default.fileExists(atPath: run.modelURL.path), !run.hasCheckpoint else {
      throw RunError("\(run.url.path) already holds a trained run (model.safetensors or a checkpoint); import into a new folder")
    }
    var config = ClassifierConfig(
      architecture: format.architecture, channels: channels, resolution: resolution, classNames: classNames,
      normalization: normalization, torchscriptFile: format.fileName, command: command)
    let probed = try open(modelPath, format: format, config: config, device: device)
    // Several batch sizes: a model whose output shape depends on the batch (a hard-coded
    // reshape, say) passes a probe of one size and fails, or scores nonsense, on the next.
    for batch in importProbeBatchSizes {
      let probe = Tensor.rand([batch, channels, resolution, resolution], generator: Generator(seed: 0))
      let output: Tensor
      do {
        output = try withNoGrad { try probed.logits(probe) }
      } catch {
        throw RunError("\(modelPath) refused a batch of shape [\(batch), \(channels), \(resolution), \(resolution)] (--input \(channels)x\(resolution)x\(resolution)): \(error)")
      }
      guard output.shape == [batch, classNames.count] else {
        throw RunError("\(modelPath) returned shape \(output.shape) for a batch of \(batch) images; expected [\(batch), \(classNames.count)] logits (--classes \(classNames.count)). Check --classes, that the model returns logits, and that its output does not depend on the batch size")
      }
      guard output.dtype.isFloatingPoint, output.isFinite().to(.float32).min().item() == 1 else {
        throw RunError("\(modelPath) returned non-finite or non-float outputs for a random batch of \(batch)")
      }
    }
    try run.create()
    let destination = run.url.appendingPathComponent(format.fileName)
    let source = URL(fileURLWithPath: modelPath)
    if source.resolvingSymlinksInPath().standardized.path != destination.resolvingSymlinksInPath().standardized.path {
      try? FileManager.default.removeItem(at: destination)
      try FileManager.default.copyItem(at: source, to: destination)
    }
    config.torchscriptFile = format.fileName
    try run.writeJSON(config, to: run.configURL)
    return try open(destination.path, format: format, config: config, device: device)
  }

  /// An imported model's file as a classifier on `device`. A TorchScript module is loaded
  /// straight onto the device, so that tensor constants inside it (which `module.to` would leave
  /// behind) move too; a package is checked against the device it was compiled for.
  static func open(_ path: String, format: ImportedModelFormat, config: ClassifierConfig, device: Device) throws -> any ImageClassifier {
    do {
      switch format {
      case .torchscript:
        try device.checkAvailable()
        let classifier = try TorchScriptClassifier(config: config, module: TorchScriptModule(contentsOf: path, device: device))
        classifier.device = device
        return classifier
      case .pt2:
        let classifier = CompiledPackageClassifier(config: config, package: try CompiledPackage(contentsOf: path))
        try classifier.move(to: device)
        return classifier
      }
    } catch let error as TorchError {
      throw RunError(error.message)
    }
  }
}

/// The batch sizes an imported model is tried on before it is accepted.
let importProbeBatchSizes = [2, 1, 5]
