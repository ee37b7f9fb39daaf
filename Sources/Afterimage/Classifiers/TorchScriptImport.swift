import Foundation
import Torch

/// Wraps a user's TorchScript classifier as a run directory that every command accepting a
/// classifier accepts. The model is probed before anything is written.
public enum TorchScriptImport {
  /// Copies `modelPath` into `run` with a config describing its input and classes, after
  /// checking that a batch `[2, C, H, W]` gives logits `[2, classes]`.
  public static func importModel(
    modelPath: String, channels: Int, resolution: Int, classNames: [String], normalization: Normalization,
    run: RunDirectory, command: String? = nil
  ) throws -> TorchScriptClassifier {
    guard normalization.mean.count == channels else {
      throw RunError("--mean and --std need \(channels) values (one per input channel), got \(normalization.mean.count)")
    }
    let module = try TorchScriptModule(contentsOf: modelPath)
    try module.train(false)
    let probe = Tensor.rand([2, channels, resolution, resolution], generator: Generator(seed: 0))
    let output: Tensor
    do {
      output = try withNoGrad { try module(normalization(probe)) }
    } catch {
      throw RunError("\(modelPath) refused a batch of shape [2, \(channels), \(resolution), \(resolution)] (--input \(channels)x\(resolution)x\(resolution)): \(error)")
    }
    guard output.shape == [2, classNames.count] else {
      throw RunError("\(modelPath) returned shape \(output.shape) for a batch of 2 images; expected [2, \(classNames.count)] logits (--classes \(classNames.count)). Check --classes, or that the model returns logits")
    }
    guard output.dtype.isFloatingPoint, output.isFinite().to(.float32).min().item() == 1 else {
      throw RunError("\(modelPath) returned non-finite or non-float outputs for a random batch")
    }
    guard !FileManager.default.fileExists(atPath: run.modelURL.path), !run.hasCheckpoint else {
      throw RunError("\(run.url.path) already holds a trained run (model.safetensors or a checkpoint); import into a new folder")
    }
    try run.create()
    let destination = run.url.appendingPathComponent("model.pt")
    let source = URL(fileURLWithPath: modelPath)
    if source.resolvingSymlinksInPath().standardized.path != destination.resolvingSymlinksInPath().standardized.path {
      try? FileManager.default.removeItem(at: destination)
      try FileManager.default.copyItem(at: source, to: destination)
    }
    let config = ClassifierConfig(
      architecture: .torchscript, channels: channels, resolution: resolution, classNames: classNames,
      normalization: normalization, torchscriptFile: "model.pt", command: command)
    try run.writeJSON(config, to: run.configURL)
    return try TorchScriptClassifier(config: config, module: try TorchScriptModule(contentsOf: destination.path))
  }
}
