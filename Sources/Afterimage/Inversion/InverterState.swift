import Foundation
import Torch

/// What an inverter run trains and keeps: G, its exponential moving average (the generator that
/// is saved and reconstructs), D, their Adam optimisers, the generator of each step's noise, and
/// the step. `checkpoint.safetensors` holds all of it, so a resumed run continues exactly as if
/// it had not stopped:
///
///     G.*  G_ema.*  D.*  G_optimizer.*  D_optimizer.*  rng.noise      metadata: step, config
public final class InverterState {
  public let generator: any ImageGenerator
  public let ema: any ImageGenerator
  public let discriminator: ProjectionDiscriminator
  let generatorOptimizer: Adam
  let discriminatorOptimizer: Adam
  let average: ExponentialMovingAverage
  /// Draws z for every step, on the CPU (the draws are then the same on every device).
  let noiseGenerator: Generator
  /// Generator updates done.
  public internal(set) var step = 0

  /// Fresh networks on `device`: G, D and the EMA copy of G, drawn in that order from one
  /// generator seeded with `config.training.seed`.
  init(config: InverterConfig, device: Device) throws {
    let options = config.training
    let initGenerator = Generator(seed: options.seed)
    generator = try config.makeGenerator(generator: initGenerator)
    discriminator = try config.makeDiscriminator(generator: initGenerator)
    ema = try config.makeGenerator(generator: initGenerator)
    for network in [generator, discriminator, ema] as [Module] { network.move(to: device) }
    average = try ExponentialMovingAverage(
      source: generator, target: ema, decay: options.effectiveEMADecay, startStep: options.effectiveEMAStart)
    // Channels-last convolution weights: oneDNN's CPU convolutions then skip their layout
    // conversions (benchmarks/README.md). The EMA generator, which reconstructs and is saved,
    // keeps the standard layout; files are written in standard order either way.
    for network in [generator, discriminator] as [Module] { network.convertToChannelsLast() }
    generatorOptimizer = Adam(
      generator.namedParameters(), learningRate: options.generatorLearningRate, beta1: options.beta1, beta2: options.beta2)
    discriminatorOptimizer = Adam(
      discriminator.namedParameters(), learningRate: options.discriminatorLearningRate, beta1: options.beta1, beta2: options.beta2)
    noiseGenerator = Generator(seed: options.seed &+ 1)
  }

  /// Standard normal noise `[count, noiseSize]` from the run's noise generator, on `device`.
  func drawNoise(count: Int, device: Device) -> Tensor {
    Tensor.randn([count, generator.noiseSize], generator: noiseGenerator).to(device)
  }

  /// Writes `run`'s checkpoint (atomically), recording `config` with it.
  func saveCheckpoint(to run: RunDirectory, config: InverterConfig) throws {
    try run.writeCheckpoint(kind: "inverter", step: step, config: try config.jsonString(), parts: checkpointParts)
  }

  /// What the checkpoint holds, in file order.
  var checkpointParts: [CheckpointPart] {
    [.module("G.", generator), .module("G_ema.", ema), .module("D.", discriminator), .optimizer("G_optimizer.", generatorOptimizer),
     .optimizer("D_optimizer.", discriminatorOptimizer), .generator("rng.noise", noiseGenerator)]
  }

  /// Restores what `saveCheckpoint` wrote in `run`.
  func loadCheckpoint(from run: RunDirectory) throws {
    step = try run.restoreCheckpoint(kind: "inverter", parts: checkpointParts)
  }

  /// Writes the trained inverter, the EMA generator's weights, to `run`'s model.safetensors.
  /// Writes the EMA generator as an inverter of its own in `snapshots/step-N/` of `run`: its
  /// config.json and model.safetensors, so every scoring command takes the folder as an inverter.
  func saveSnapshot(in run: RunDirectory, config: InverterConfig) throws {
    let snapshot = run.snapshot(atStep: step)
    try snapshot.create()
    try snapshot.writeJSON(config, to: snapshot.configURL)
    try saveModel(to: snapshot, config: config)
  }

  func saveModel(to run: RunDirectory, config: InverterConfig) throws {
    ema.eval()
    try ema.saveWeights(to: run.modelURL, metadata: ["config": try config.jsonString(), "format": "pt", "weights": "G_ema"])
  }

  /// The L2 norm of all of a module's gradients together.
  static func gradientNorm(_ module: Module) -> Double {
    let squares = module.parameters.compactMap { $0.grad?.pow(2).sum().item() }
    return squares.reduce(0, +).squareRoot()
  }
}
