import Afterimage
import ArgumentParser
import Torch

// The flags of the two trainers. Each group declares its flags with the library's defaults and
// maps them onto the library's recipe in one place, so neither a default nor a field is
// written twice.

/// `inverter train`'s choices of data, networks, losses and training, each flag defaulting to
/// the library's value (`InverterRecipe.default`); `recipe` maps them onto the library's types.
struct InverterRecipeOptions: ParsableArguments {
  @Option(help: ArgumentHelp("The data set (default: the classifier's).", valueName: "name")) var dataset: String?
  @Option(help: "Generator: biggan (the paper's) or upconv (Dosovitskiy & Brox's decoder, a baseline).")
  var arch = InverterRecipe.default.architecture
  @Option(help: "Losses: paper (adversarial only), fidelity (adversarial + pixel, perceptual, logit); for --arch upconv: upconv (pixel L2, the default) or deepsim (+ feature and adversarial).")
  var preset: InverterPreset?
  @Option(help: "Image resolution: 32, 64 or 128 (must match the classifier's input).") var resolution: Int?
  @Option(help: "Base width of G and D.") var ch = InverterRecipe.default.ch
  @Option(help: "Length of the noise vector z.") var noiseSize = InverterRecipe.default.noiseSize
  @Flag(help: "No self-attention blocks.") var noAttention = !InverterRecipe.default.attention
  @Option(help: "Logit preprocessing: raw (the paper) or standardized.") var logits = InverterRecipe.default.preprocessing
  @Option(help: "What BigGAN's 4×4 seed is computed from: noise (BigGAN's) or noise+representation (BigGAN-deep's [z₀, embedding], so the representation reaches the layout directly), or noise+representation+map (that, plus a spatial feature map placed on the 4×4 grid; --representation features:NAME of a convolutional layer).")
  var seedInput = InverterRecipe.default.seedInput
  @Option(
    help: ArgumentHelp(
      "What to invert: logits (the paper), or features:NAME, one of the classifier's feature maps (stem, layer1, …, pool for the ResNets; `afterimage classifier info` lists them), average-pooled to at most a 4×4 grid and flattened.",
      valueName: "representation"),
    transform: { try Representation(parsing: $0) })
  var representation = InverterRecipe.default.representation
  @Option(help: "Training steps (generator updates).") var steps = InverterRecipe.default.training.steps
  @Option(help: "Batch size.") var batchSize = InverterRecipe.default.training.batchSize
  @Option(help: "Generator learning rate.") var gLr = InverterRecipe.default.training.generatorLearningRate
  @Option(help: "Discriminator learning rate.") var dLr = InverterRecipe.default.training.discriminatorLearningRate
  @Option(help: "Discriminator steps per generator step.") var dSteps = InverterRecipe.default.training.discriminatorStepsPerGeneratorStep
  @Option(help: "EMA decay of G's weights (default: from the run length).") var emaDecay: Double?
  @Option(help: "Step from which the EMA averages (default: a fifth of the run).") var emaStart: Int?
  @Option(help: "Orthogonal regularisation strength (0: off).") var orthogonal = InverterRecipe.default.training.orthogonalRegularization
  @Option(help: "Perceptual-loss layers (fidelity and deepsim presets), comma-separated (default: the network's, layer1,layer2 for the ResNets; an imported model's are chosen from its submodules' outputs).") var perceptualLayers: String?
  // One option per loss term, named and described by `InverterLossTerm`.
  @Option(name: .customLong(InverterLossTerm.adversarial.flag), help: .init(InverterLossTerm.adversarial.help)) var adversarialWeight: Double?
  @Option(name: .customLong(InverterLossTerm.pixelL1.flag), help: .init(InverterLossTerm.pixelL1.help)) var l1Weight: Double?
  @Option(name: .customLong(InverterLossTerm.pixelL2.flag), help: .init(InverterLossTerm.pixelL2.help)) var l2Weight: Double?
  @Option(name: .customLong(InverterLossTerm.perceptual.flag), help: .init(InverterLossTerm.perceptual.help)) var perceptualWeight: Double?
  @Option(name: .customLong(InverterLossTerm.logitConsistency.flag), help: .init(InverterLossTerm.logitConsistency.help)) var logitWeight: Double?
  @Option(help: ArgumentHelp("The logit-consistency term reads each fake shifted by up to this many pixels in x and y, so that only what survives a small shift (drawn content, not a pixel-exact pattern only the classifier reads) satisfies it (0: unshifted).", valueName: "pixels"))
  var logitJitter: Int?
  @Option(help: "Evaluation classifier whose features the perceptual loss uses (default: the inverted classifier).") var perceptualNetwork: String?
  @Option(help: "Steps between sample grids.") var sampleEvery = InverterRecipe.default.training.sampleEvery
  @Option(help: "Steps between checkpoints.") var checkpointEvery = InverterRecipe.default.training.checkpointEvery
  @Option(help: ArgumentHelp("Steps at which the EMA generator is also kept as an inverter of its own in snapshots/step-N (a learning curve), comma-separated.", valueName: "steps"))
  var snapshotAt: String?
  @Option(help: "Train on the first N examples only.") var trainCount: Int?
  @Option(help: "Random seed.") var seed = InverterRecipe.default.training.seed
  @Option(help: precisionHelp(default: InverterRecipe.default.training.forwardPrecision), transform: choice(of: "--precision"))
  var precision = InverterRecipe.default.training.forwardPrecision

  func validate() throws {
    try require(steps >= 1, "--steps must be at least 1")
    try require(batchSize >= 2, "--batch-size must be at least 2 (batch norm needs two samples)")
    try require(ch >= 1, "--ch must be at least 1")
    try require(noiseSize >= 8, "--noise-size must be at least 8 (it is split over the blocks)")
    try require([gLr, dLr].allSatisfy { $0 > 0 && $0.isFinite }, "--g-lr and --d-lr must be positive finite numbers")
    try require(dSteps >= 1, "--d-steps must be at least 1")
    try require(emaDecay.map { $0 >= 0 && $0 < 1 } ?? true, "--ema-decay must be in [0, 1)")
    try require(emaStart.map { $0 >= 0 } ?? true, "--ema-start must not be negative")
    try require(orthogonal >= 0 && orthogonal.isFinite, "--orthogonal must be a finite number, not negative")
    try require(sampleEvery >= 1 && checkpointEvery >= 1, "--sample-every and --checkpoint-every must be at least 1")
    try require(trainCount.map { $0 >= 2 } ?? true, "--train-count must be at least 2")
    try require(snapshotSteps.map { $0.allSatisfy { $0 >= 1 && $0 <= steps } } ?? false,
                "--snapshot-at takes comma-separated steps from 1 to --steps (\(steps)), e.g. 500,1500")
    try require(arch == .biggan || seedInput == .noise, "--seed-input is a choice of the BigGAN generator (--arch biggan); the up-convolutional decoder has no seed")
  }

  /// `--snapshot-at`'s steps, sorted; nil when one is not a whole number.
  var snapshotSteps: [Int]? {
    guard let snapshotAt else { return [] }
    let steps = snapshotAt.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    return steps.contains(nil) ? nil : steps.compactMap { $0 }.sorted()
  }

  /// The recipe these flags describe.
  var recipe: InverterRecipe {
    var recipe = InverterRecipe()
    recipe.dataset = dataset
    recipe.architecture = arch
    recipe.preset = preset
    recipe.resolution = resolution
    recipe.ch = ch
    recipe.noiseSize = noiseSize
    recipe.attention = !noAttention
    recipe.preprocessing = logits
    recipe.seedInput = seedInput
    recipe.representation = representation
    recipe.perceptualLayers = perceptualLayers.map { $0.split(separator: ",").map(String.init) }
    recipe.perceptualNetwork = perceptualNetwork
    let weights: [InverterLossTerm: Double?] = [
      .adversarial: adversarialWeight, .pixelL1: l1Weight, .pixelL2: l2Weight, .perceptual: perceptualWeight, .logitConsistency: logitWeight,
    ]
    recipe.weightOverrides.weights = weights.compactMapValues { $0 }
    recipe.weightOverrides.logitJitter = logitJitter
    recipe.training.steps = steps
    recipe.training.batchSize = batchSize
    recipe.training.generatorLearningRate = gLr
    recipe.training.discriminatorLearningRate = dLr
    recipe.training.discriminatorStepsPerGeneratorStep = dSteps
    recipe.training.emaDecay = emaDecay
    recipe.training.emaStart = emaStart
    recipe.training.orthogonalRegularization = orthogonal
    recipe.training.sampleEvery = sampleEvery
    recipe.training.checkpointEvery = checkpointEvery
    recipe.training.snapshotSteps = snapshotSteps ?? []
    recipe.training.trainCount = trainCount
    recipe.training.seed = seed
    recipe.training.forwardPrecision = precision
    return recipe
  }
}

/// `classifier train`'s choices of data, network and training, each flag defaulting to the
/// library's value (`ClassifierRecipe.default`); `recipe()` maps them onto the library's types.
struct ClassifierRecipeOptions: ParsableArguments {
  @Option(help: ArgumentHelp("The data set: \(DatasetSource.help).", valueName: "name"))
  var dataset = ClassifierRecipe.default.dataset
  @Option(
    help: withDefault("Architecture: resnet20, resnet18, resnet50 or evalnet (the independent evaluation classifier).", ClassifierRecipe.default.architecture),
    transform: choice(of: "--arch", among: ClassifierArchitecture.built))
  var arch = ClassifierRecipe.default.architecture
  @Option(help: "Channel width multiplier.")
  var width = ClassifierRecipe.default.width
  @Option(help: "Input resolution (Fashion-MNIST's 28×28 is zero-padded to it).")
  var resolution = ClassifierRecipe.default.resolution
  @Option(help: "Epochs.") var epochs = ClassifierRecipe.default.training.epochs
  @Option(help: "Batch size.") var batchSize = ClassifierRecipe.default.training.batchSize
  @Option(name: .customLong("lr"), help: "Peak learning rate (SGD, Nesterov momentum, cosine decay).")
  var learningRate = ClassifierRecipe.default.training.learningRate
  @Option(help: "Momentum.") var momentum = ClassifierRecipe.default.training.momentum
  @Option(help: "Weight decay.") var weightDecay = ClassifierRecipe.default.training.weightDecay
  @Option(help: "Learning-rate warm-up steps.") var warmupSteps = ClassifierRecipe.default.training.warmupSteps
  @Option(help: "Label smoothing ε.") var labelSmoothing = ClassifierRecipe.default.training.labelSmoothing
  @Option(help: "Zero padding of random crops (0 turns cropping off).") var cropPadding = ClassifierRecipe.default.training.cropPadding
  @Flag(help: "No random horizontal flips.") var noFlip = !ClassifierRecipe.default.training.horizontalFlip
  @Option(help: "Adversarial training (Madry PGD): linf:EPS or l2:EPS, e.g. linf:8/255.") var adversarial: String?
  @Option(help: "PGD steps for adversarial training.") var attackSteps = AttackSpec.Defaults.trainingSteps
  @Option(help: "PGD step size (default: ε/4).") var attackStepSize: Double?
  @Option(help: "Train on the first N training examples only.") var trainCount: Int?
  @Option(help: "Test examples scored after each epoch (default: all).") var evalCount: Int?
  @Option(help: "Steps between checkpoints.") var checkpointEvery = ClassifierRecipe.default.training.checkpointEvery
  @Option(help: "Random seed.") var seed = ClassifierRecipe.default.training.seed
  @Option(help: precisionHelp(default: ClassifierRecipe.default.training.forwardPrecision), transform: choice(of: "--precision"))
  var precision = ClassifierRecipe.default.training.forwardPrecision
  @Option(help: "Colour jitter: brightness factors drawn from [1 − s, 1 + s] (0: off).") var brightness = ClassifierRecipe.default.training.brightness
  @Option(help: "Colour jitter: contrast strength (0: off).") var contrast = ClassifierRecipe.default.training.contrast
  @Option(help: "Colour jitter: saturation strength (0: off).") var saturation = ClassifierRecipe.default.training.saturation

  func validate() throws {
    try require(epochs >= 1, "--epochs must be at least 1")
    try require(batchSize >= 1, "--batch-size must be at least 1")
    try require(learningRate > 0 && learningRate.isFinite, "--lr must be a positive finite number")
    try require(momentum >= 0 && momentum < 1, "--momentum must be in [0, 1)")
    try require(weightDecay >= 0 && weightDecay.isFinite, "--weight-decay must be a finite number, not negative")
    try require(warmupSteps >= 0, "--warmup-steps must not be negative")
    try require(labelSmoothing >= 0 && labelSmoothing < 1, "--label-smoothing must be in [0, 1)")
    try require(cropPadding >= 0, "--crop-padding must not be negative")
    try require(attackSteps >= 1, "--attack-steps must be at least 1")
    try require(attackStepSize.map { $0 > 0 && $0.isFinite } ?? true, "--attack-step-size must be a positive finite number")
    try require(checkpointEvery >= 1, "--checkpoint-every must be at least 1")
    try require(trainCount.map { $0 >= 1 } ?? true, "--train-count must be at least 1")
    try require(evalCount.map { $0 >= 1 } ?? true, "--eval-count must be at least 1")
    try require(width > 0 && width.isFinite, "--width must be a positive finite number")
    try require([brightness, contrast, saturation].allSatisfy { $0 >= 0 && $0 < 1 }, "colour jitter strengths must be in [0, 1)")
  }

  /// The recipe these flags describe (parsing `--adversarial`, which can be refused).
  func recipe() throws -> ClassifierRecipe {
    var recipe = ClassifierRecipe()
    recipe.dataset = dataset
    recipe.architecture = arch
    recipe.width = width
    recipe.resolution = resolution
    recipe.training.epochs = epochs
    recipe.training.batchSize = batchSize
    recipe.training.learningRate = learningRate
    recipe.training.momentum = momentum
    recipe.training.weightDecay = weightDecay
    recipe.training.warmupSteps = warmupSteps
    recipe.training.labelSmoothing = labelSmoothing
    recipe.training.cropPadding = cropPadding
    recipe.training.horizontalFlip = !noFlip
    recipe.training.brightness = brightness
    recipe.training.contrast = contrast
    recipe.training.saturation = saturation
    recipe.training.trainCount = trainCount
    recipe.training.evaluationCount = evalCount
    recipe.training.checkpointEvery = checkpointEvery
    recipe.training.seed = seed
    recipe.training.forwardPrecision = precision
    recipe.training.adversarial = try adversarial.map { try AttackSpec.adversarialTraining($0, steps: attackSteps, stepSize: attackStepSize) }
    return recipe
  }
}
