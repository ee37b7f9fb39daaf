import Foundation
import Torch

/// What a classifier run trains and keeps: the network, its SGD optimiser, the generators of
/// the augmentation and attack draws, and the step. `checkpoint.safetensors` holds all of it,
/// so a resumed run continues exactly as if it had not stopped:
///
///     model.*  optimizer.*  rng.augment  rng.attack      metadata: step, config
public final class ClassifierState {
  public let classifier: NetworkClassifier
  let optimizer: SGD
  /// Draw the augmentation and the PGD random starts, on the CPU (the same on every device).
  let augmentGenerator: Generator
  let attackGenerator: Generator
  /// SGD steps done.
  public internal(set) var step = 0

  /// A freshly initialised network of `config` on `device`, drawn from `options.seed`.
  init(config: ClassifierConfig, options: ClassifierTrainingOptions, device: Device) throws {
    classifier = try NetworkClassifier(config: config, generator: Generator(seed: options.seed))
    classifier.move(to: device)
    // Channels-last convolution weights and images: oneDNN's CPU convolutions skip their layout
    // conversions (benchmarks/README.md). Saved weights are in standard order regardless.
    classifier.model.convertToChannelsLast()
    optimizer = SGD(
      classifier.model.namedParameters(), learningRate: options.learningRate, momentum: options.momentum,
      weightDecay: options.weightDecay, nesterov: options.momentum > 0)
    augmentGenerator = Generator(seed: options.seed &+ 1)
    attackGenerator = Generator(seed: options.seed &+ 2)
  }

  /// What the checkpoint holds, in file order.
  var checkpointParts: [CheckpointPart] {
    [.module("model.", classifier.model), .optimizer("optimizer.", optimizer), .generator("rng.augment", augmentGenerator), .generator("rng.attack", attackGenerator)]
  }

  /// Writes `run`'s checkpoint (atomically), recording `config` with it.
  func saveCheckpoint(to run: RunDirectory, config: ClassifierConfig) throws {
    try run.writeCheckpoint(kind: "classifier", step: step, config: try config.jsonString(), parts: checkpointParts)
  }

  /// Restores what `saveCheckpoint` wrote in `run`.
  func loadCheckpoint(from run: RunDirectory) throws {
    step = try run.restoreCheckpoint(kind: "classifier", parts: checkpointParts)
  }
}
