import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage inverter …`: train inverters and reconstruct images from logits.
struct InverterCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inverter", abstract: "Train a feedforward inverter of a classifier's logits, and reconstruct images with it.",
    subcommands: [InverterTrain.self, InverterReconstruct.self, InverterOptimize.self])
}

struct InverterTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train", abstract: "Train a BigGAN generator conditioned on a classifier's logits (against a projection discriminator).")

  @Option(help: "The classifier to invert (run directory).") var classifier: String
  @Option(help: ArgumentHelp("The data set (default: the classifier's).", valueName: "name")) var dataset: String?
  @Option(help: "The run directory to write.") var out: String
  @Option(help: "Generator: biggan (the paper's) or upconv (Dosovitskiy & Brox's decoder, a baseline).") var arch = "biggan"
  @Option(help: "Losses: paper (adversarial only), fidelity (adversarial + pixel, perceptual, logit); for --arch upconv: upconv (pixel L2, the default) or deepsim (+ feature and adversarial).") var preset: String?
  @Option(help: "Image resolution: 32, 64 or 128 (must match the classifier's input).") var resolution: Int?
  @Option(help: "Base width of G and D.") var ch = 16
  @Option(help: "Length of the noise vector z.") var noiseSize = 64
  @Flag(help: "No self-attention blocks.") var noAttention = false
  @Option(help: "Logit preprocessing: raw (the paper) or standardized.") var logits = "raw"
  @Option(help: "Training steps (generator updates).") var steps = 3000
  @Option(help: "Batch size.") var batchSize = 64
  @Option(help: "Generator learning rate.") var gLr = 1e-4
  @Option(help: "Discriminator learning rate.") var dLr = 4e-4
  @Option(help: "Discriminator steps per generator step.") var dSteps = 1
  @Option(help: "EMA decay of G's weights (default: from the run length).") var emaDecay: Double?
  @Option(help: "Step from which the EMA averages (default: a fifth of the run).") var emaStart: Int?
  @Option(help: "Orthogonal regularisation strength (0: off).") var orthogonal = 0.0
  @Option(help: "Perceptual-loss layers (fidelity and deepsim presets), comma-separated (default: the network's, layer1,layer2 for the ResNets; an imported model's are chosen from its submodules' outputs).") var perceptualLayers: String?
  @Option(help: "Override the preset's adversarial-loss weight.") var adversarialWeight: Double?
  @Option(help: "Override the preset's pixel L1 weight.") var l1Weight: Double?
  @Option(help: "Override the preset's pixel L2 weight.") var l2Weight: Double?
  @Option(help: "Override the preset's perceptual weight.") var perceptualWeight: Double?
  @Option(help: "Override the preset's logit-consistency weight.") var logitWeight: Double?
  @Option(help: "Evaluation classifier whose features the perceptual loss uses (default: the inverted classifier).") var perceptualNetwork: String?
  @Option(help: "Steps between sample grids.") var sampleEvery = 250
  @Option(help: "Steps between checkpoints.") var checkpointEvery = 250
  @Option(help: "Train on the first N examples only.") var trainCount: Int?
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @Option(help: "Threads (default: all cores).") var threads: Int?
  @Flag(help: "Continue the run in --out from its checkpoint (its saved options are used).") var resume = false
  @OptionGroup var compute: DeviceOptions
  @OptionGroup var mixed: PrecisionOptions

  func validate() throws {
    try require(steps >= 1, "--steps must be at least 1")
    try require(batchSize >= 2, "--batch-size must be at least 2 (batch norm needs two samples)")
    try require(ch >= 1, "--ch must be at least 1")
    try require(noiseSize >= 8, "--noise-size must be at least 8 (it is split over the blocks)")
    try require(gLr > 0 && dLr > 0, "learning rates must be positive")
    try require(dSteps >= 1, "--d-steps must be at least 1")
    try require(emaDecay.map { $0 >= 0 && $0 < 1 } ?? true, "--ema-decay must be in [0, 1)")
    try require(emaStart.map { $0 >= 0 } ?? true, "--ema-start must not be negative")
    try require(orthogonal >= 0, "--orthogonal must not be negative")
    try require(sampleEvery >= 1 && checkpointEvery >= 1, "--sample-every and --checkpoint-every must be at least 1")
    try require(trainCount.map { $0 >= 2 } ?? true, "--train-count must be at least 2")
    try require(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
  }

  func run() throws {
    if let threads { Torch.threadCount = threads }
    let device = try compute.resolved()  // a device this machine lacks is refused before any work
    let run = RunDirectory(out)
    let model = try Classifiers.load(classifier)
    var config: InverterConfig
    if resume {
      guard run.hasCheckpoint else { throw ValidationError("\(out) has no checkpoint.safetensors to resume from") }
      config = try run.readJSON(InverterConfig.self, from: run.configURL)
    } else {
      if run.hasCheckpoint { throw ValidationError("\(out) already holds a run: pass --resume to continue it, or choose another --out") }
      guard let preprocessing = LogitPreprocessing(rawValue: logits) else { throw ValidationError("--logits must be raw or standardized") }
      let featureSource = try perceptualNetwork.map { try Classifiers.load($0) } ?? model
      let layers = perceptualLayers.map { $0.split(separator: ",").map(String.init) } ?? featureSource.defaultFeatureLayers
      guard let architecture = InverterConfig.Architecture(rawValue: arch) else {
        throw ValidationError("--arch must be biggan or upconv, not '\(arch)'")
      }
      let presetName = preset ?? (architecture == .upconv ? "upconv" : "paper")
      var losses: InversionLossWeights
      switch (architecture, presetName) {
      case (.biggan, "paper"): losses = .paper
      case (.biggan, "fidelity"): losses = .fidelity(layers: layers)
      case (.upconv, "upconv"): losses = .upconv
      case (.upconv, "deepsim"): losses = .deepsim(layers: layers)
      default:
        throw ValidationError("--preset \(presetName) does not go with --arch \(arch): biggan takes paper or fidelity, upconv takes upconv or deepsim")
      }
      if let adversarialWeight { losses.adversarial = adversarialWeight }
      if let l1Weight { losses.pixelL1 = l1Weight }
      if let l2Weight { losses.pixelL2 = l2Weight }
      if let perceptualWeight {
        losses.perceptual = perceptualWeight
        if losses.perceptualLayers.isEmpty { losses.perceptualLayers = layers }
      }
      if let logitWeight { losses.logitConsistency = logitWeight }
      guard [losses.adversarial, losses.pixelL1, losses.pixelL2, losses.perceptual, losses.logitConsistency].allSatisfy({ $0 >= 0 }),
        losses.adversarial + losses.pixelL1 + losses.pixelL2 + losses.perceptual + losses.logitConsistency > 0
      else { throw ValidationError("loss weights must be non-negative and not all zero") }
      if losses.perceptual > 0 { losses.perceptualNetwork = perceptualNetwork }
      var options = InverterTrainingOptions()
      options.steps = steps
      options.batchSize = batchSize
      options.generatorLearningRate = gLr
      options.discriminatorLearningRate = dLr
      options.discriminatorStepsPerGeneratorStep = dSteps
      options.emaDecay = emaDecay
      options.emaStart = emaStart
      options.orthogonalRegularization = orthogonal
      options.sampleEvery = sampleEvery
      options.checkpointEvery = checkpointEvery
      options.trainCount = trainCount
      options.seed = seed
      let precision = try mixed.resolved()
      options.precision = precision == .float32 ? nil : precision
      guard let name = dataset ?? model.config.dataset else { throw ValidationError("the classifier records no data set: pass --dataset") }
      config = InverterConfig(
        resolution: resolution ?? model.config.resolution, channels: model.config.channels, logitCount: model.config.classCount,
        classifier: classifier, dataset: name, preset: presetName, losses: losses, training: options)
      config.architecture = architecture
      config.ch = ch
      config.noiseSize = noiseSize
      config.attention = !noAttention
      config.preprocessing = preprocessing
      config.command = reproducibleCommandLine()
    }
    guard config.resolution == model.config.resolution else {
      throw ValidationError("the classifier takes \(model.config.resolution)×\(model.config.resolution) images; an inverter at \(config.resolution) cannot be scored by it")
    }
    let source = try DatasetSource(config.dataset)
    let train = try source.open(split: .train, resolution: config.resolution).dataset
    let heldOut = try source.open(split: .test, resolution: config.resolution).dataset
    let perceptual = try config.losses.perceptualNetwork.map { try Classifiers.load($0) }
    let trainer = try InverterTrainer(
      run: run, config: config, classifier: model, classifierPath: classifier, perceptualNetwork: perceptual,
      train: train, heldOut: heldOut, datasetKey: "\(config.dataset)|train", device: device)
    print("training a \(config.resolution)×\(config.resolution) inverter (\(config.preset)) of \(classifier) on \(train.name) for \(config.training.steps) steps")
    let start = Date()
    let firstStep = resume ? (try? run.readCheckpoint(kind: "inverter").step) ?? 0 : 0
    try trainer.fit(resume: resume)
    guard trainer.step >= config.training.steps else { throw ExitCode(130) }
    let seconds = Date().timeIntervalSince(start)
    // How long this invocation took (a resumed run counts only the steps it ran).
    try printJSONFile(
      ["seconds": Double(seconds), "steps": Double(trainer.step), "steps_this_run": Double(trainer.step - firstStep), "threads": Double(Torch.threadCount),
       "images_per_second": Double((trainer.step - firstStep) * config.training.batchSize) / max(seconds, 1e-9)],
      to: run.resultsURL.path)
    print(String(format: "done in %@; wrote %@ and samples in %@", ProgressBarClock.format(seconds), run.modelURL.path, run.samplesURL.path))
  }
}

struct InverterReconstruct: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconstruct", abstract: "Originals beside their reconstructions from the classifier's logits, as a PNG grid.")

  @Option(help: "The inverter run directory.") var inverter: String
  @Option(help: "Use this classifier instead of the one recorded in the run.") var classifier: String?
  @Option(help: ArgumentHelp("Data set to take originals from (default: the inverter's).", valueName: "name")) var dataset: String?
  @Option(help: "Which split.") var split = "test"
  @Option(help: "How many originals.") var count = 16
  @Option(parsing: .upToNextOption, help: "Image files to reconstruct instead of a data set.") var image: [String] = []
  @Option(help: "Reconstructions per original (different noise).") var samples = 1
  @Option(help: "Noise seed.") var seed: UInt64 = 0
  @Option(help: "The PNG to write.") var out = "reconstructions.png"
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 1, "--count must be at least 1")
    try require((1...16).contains(samples), "--samples must be 1 to 16")
  }

  func run() throws {
    let model = try Inverter.load(inverter, classifierOverride: classifier, device: try compute.resolved())
    let config = model.classifier.config
    let originals: Tensor
    if !image.isEmpty {
      originals = try Tensor.stack(image.map { path in
        let picture = try ImageFile.read(URL(fileURLWithPath: path))
        return ImageFile.resizedAndCentreCropped(ImageFile.withChannels(picture, config.channels), to: config.resolution)
      })
    } else {
      guard let splitValue = Split(rawValue: split) else { throw ValidationError("--split must be train or test") }
      let data = try DatasetSource(dataset ?? model.config.dataset).open(split: splitValue, resolution: config.resolution).dataset
      originals = try data.batch(at: Array(0..<min(count, data.count))).images
    }
    let n = originals.shape[0]
    let logits = try withNoGrad { try model.classifier.logits(originals) }  // [n, K]
    var columns = [originals.to(model.device)]
    var predicted: [[Int64]] = []
    for k in 0..<max(1, samples) {
      let reconstruction = model.reconstruct(logits: logits, noise: model.noise(count: n, seed: seed &+ UInt64(k)))
      columns.append(reconstruction)
      predicted.append(try withNoGrad { try model.classifier.logits(reconstruction).argmax(dim: 1) }.scalars(as: Int64.self))
    }
    let originalClasses = logits.argmax(dim: 1).scalars(as: Int64.self)
    // Rows: an original, then its reconstructions; a reconstruction whose top-1 class differs
    // from the original's gets a red frame, a matching one a green frame.
    let tiles = Tensor.stack(columns, dim: 1).flattened(from: 0, through: 1)  // [n·(K+1), C, R, R]
    var borders: [RGB?] = []
    for i in 0..<n {
      borders.append(nil)
      for k in 0..<columns.count - 1 { borders.append(predicted[k][i] == originalClasses[i] ? .green : .red) }
    }
    let grid = ImageGrid.make(tiles, columns: columns.count, padding: 2, scale: max(1, 96 / config.resolution), borders: borders)
    try PNG.write(grid, to: URL(fileURLWithPath: out))
    let agreement = predicted.flatMap { $0 }.enumerated().filter { $0.element == originalClasses[$0.offset % n] }.count
    print("wrote \(out): \(n) originals, \(columns.count - 1) reconstruction(s) each")
    print(String(format: "top-1 agreement (classifier on reconstruction = on original): %d/%d (%.1f%%)", agreement, n * (columns.count - 1), 100 * Double(agreement) / Double(n * (columns.count - 1))))
    for i in 0..<min(n, 8) {
      print("  \(i): \(config.classNames[Int(originalClasses[i])]) → \(predicted.map { config.classNames[Int($0[i])] }.joined(separator: ", "))")
    }
  }
}

struct InverterOptimize: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "optimize",
    abstract: "Optimisation-based inversion: gradient descent on images to match the classifier's logits (a baseline).")

  @Option(help: "The classifier whose logits are inverted.") var classifier: String
  @Option(help: ArgumentHelp("Data set to take originals from (default: the classifier's).", valueName: "name")) var dataset: String?
  @Option(help: "Which split.") var split = "test"
  @Option(help: "How many originals.") var count = 8
  @Option(parsing: .upToNextOption, help: "Image files to invert instead of a data set.") var image: [String] = []
  @Option(help: "Gradient steps per image.") var steps = 200
  @Option(help: "Adam learning rate on the image parameters.") var lr = 0.05
  @Option(help: "Total-variation prior weight.") var tv = 0.5
  @Option(help: "Norm prior weight.") var norm = 0.01
  @Option(help: "Random jitter in pixels.") var jitter = 2
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @Option(help: "The PNG to write.") var out = "optimized.png"
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 1, "--count must be at least 1")
    try require(steps >= 1, "--steps must be at least 1")
    try require(lr > 0 && tv >= 0 && norm >= 0 && jitter >= 0, "--lr must be positive; --tv, --norm, --jitter not negative")
  }

  func run() throws {
    let model = try Classifiers.load(classifier, device: try compute.resolved())
    let config = model.config
    let originals: Tensor
    if !image.isEmpty {
      originals = try Tensor.stack(image.map { path in
        ImageFile.resizedAndCentreCropped(ImageFile.withChannels(try ImageFile.read(URL(fileURLWithPath: path)), config.channels), to: config.resolution)
      })
    } else {
      guard let splitValue = Split(rawValue: split) else { throw ValidationError("--split must be train or test") }
      guard let name = dataset ?? config.dataset else { throw ValidationError("this classifier records no data set: pass --dataset") }
      let data = try DatasetSource(name).open(split: splitValue, resolution: config.resolution).dataset
      originals = try data.batch(at: Array(0..<min(count, data.count))).images
    }
    let targets = try withNoGrad { try model.logits(originals) }
    var options = OptimizationInversion.Options()
    options.steps = steps
    options.learningRate = lr
    options.totalVariation = tv
    options.norm = norm
    options.jitter = jitter
    options.seed = seed
    let start = Date()
    let (images, error) = try OptimizationInversion.invert(targets, classifier: model, options: options, progress: true)
    let seconds = Date().timeIntervalSince(start)
    let n = originals.shape[0]
    let agree = try withNoGrad { (try model.logits(images).argmax(dim: 1) .== targets.argmax(dim: 1)).to(.float32).sum().item() }
    let tiles = Tensor.stack([originals.to(images.device), images], dim: 1).flattened(from: 0, through: 1)
    try PNG.write(ImageGrid.make(tiles, columns: 8, padding: 2, scale: max(1, 96 / config.resolution)), to: URL(fileURLWithPath: out))
    print(String(format: "wrote %@: %d originals beside their optimised inversions (%d steps, %.2f s per image, %.1f images/s)", out, n, steps, seconds / Double(n), Double(n) / seconds))
    print(String(format: "final logit MSE %.4f; top-1 agreement %d/%d", error, Int(agree), n))
  }
}
