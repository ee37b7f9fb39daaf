import Foundation
import Torch

/// The GAN losses (hinge, as in BigGAN and the paper).
public enum HingeLoss {
  /// `mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))`, returned as its two parts.
  public static func discriminator(real: Tensor, fake: Tensor) -> (real: Tensor, fake: Tensor) {
    ((1 - real).relu().mean(), (1 + fake).relu().mean())
  }

  /// `−mean(D(fake))`.
  public static func generator(fake: Tensor) -> Tensor { -fake.mean() }
}

/// The losses of one training step, for logs (metrics.jsonl's columns).
public struct InverterStepLosses {
  public var discriminatorReal = 0.0, discriminatorFake = 0.0
  /// Each of G's terms that is weighted, by term (`InverterLossTerm`).
  public var terms: [InverterLossTerm: Double] = [:]
  /// D's mean score on real and on fake images.
  public var scoreReal = 0.0, scoreFake = 0.0
  /// Measured only on logged steps (0 otherwise).
  public var generatorGradientNorm = 0.0, discriminatorGradientNorm = 0.0
  /// G's whole loss, the weighted sum of its terms.
  public var generatorTotal = 0.0

  public init() {}

  /// G's term `term`, 0 when it is not weighted.
  public subscript(term: InverterLossTerm) -> Double { terms[term] ?? 0 }

  /// The value logged as the pixel term: L1 when it is weighted, else L2.
  public var pixel: Double { terms[.pixelL1] ?? terms[.pixelL2] ?? 0 }

  /// The step's losses by metrics.jsonl key. Every term's key is there (0 when unweighted); a
  /// key two terms share holds the later term's value when both are weighted.
  public var values: [String: Double] {
    var values = ["D_loss_real": discriminatorReal, "D_loss_fake": discriminatorFake, "D_real": scoreReal, "D_fake": scoreFake,
                  "G_grad_norm": generatorGradientNorm, "D_grad_norm": discriminatorGradientNorm]
    for term in InverterLossTerm.allCases where values[term.metric] == nil || terms[term] != nil { values[term.metric] = self[term] }
    return values
  }

  /// The numbers ranks average each step, by name (a new term cannot shift another's place).
  var averaged: [(name: String, value: Double)] {
    [("D_loss_real", discriminatorReal), ("D_loss_fake", discriminatorFake), ("D_real", scoreReal), ("D_fake", scoreFake),
     ("G_total", generatorTotal)] + InverterLossTerm.allCases.compactMap { term in terms[term].map { (term.rawValue, $0) } }
  }

  /// These losses with every averaged number replaced by the one of the same name in `means`.
  func replacing(_ means: [String: Double]) -> InverterStepLosses {
    var agreed = self
    agreed.discriminatorReal = means["D_loss_real"] ?? discriminatorReal
    agreed.discriminatorFake = means["D_loss_fake"] ?? discriminatorFake
    agreed.scoreReal = means["D_real"] ?? scoreReal
    agreed.scoreFake = means["D_fake"] ?? scoreFake
    agreed.generatorTotal = means["G_total"] ?? generatorTotal
    for term in terms.keys { agreed.terms[term] = means[term.rawValue] }
    return agreed
  }
}

/// What the inverter minimises, each term weighted by `config.losses`:
///
/// - D: the hinge loss on its scores of real images and of fakes, both paired with the real
///   image's (preprocessed) logits.
/// - G: `adversarial · hinge(D(fake))` + `pixelL2 · MSE` + `pixelL1 · L1` (images in [0, 1])
///   + `perceptual · Σ_layers FeatureDistance.channelAveraged` + `logitConsistency ·
///   MSE(Φ(fake)/s, ℓ/s)` (Φ: the inverted representation, logits or a pooled feature map;
///   ℓ: its cached value for the original; s: the cached values' standard deviation) + `orthogonal ·
///   orthogonalPenalty(G)`. A term with weight 0 is not computed.
///
/// Every loss is taken in float32 whatever the autocast precision of the passes.
struct InverterObjective {
  let weights: InversionLossWeights
  let orthogonalRegularization: Double
  /// The frozen classifier whose representation is inverted.
  let classifier: any ImageClassifier
  /// The evaluation classifier whose features the perceptual term reads, when the losses name one.
  let perceptualNetwork: (any ImageClassifier)?
  /// What of the classifier is inverted: the consistency term compares the fakes' and the
  /// originals' values of it (logits in the paper).
  let representation: Representation
  /// The standard deviation of all cached logits: the logit-consistency term compares logits in
  /// this unit, so its weight means the same for a confident classifier (logits of ±20) as for
  /// a hesitant one.
  let logitScale: Double
  /// The run's seed: the logit term's shifts (`logitJitter`) of step t are drawn from (seed, t),
  /// so a resumed run draws the shifts an uninterrupted one does.
  var seed: UInt64 = 0
  let precision: Precision
  let device: Device

  /// Throws unless the networks can compute the terms `weights` ask for: gradients through the
  /// classifier (logit consistency, and the perceptual term when it reads the classifier) and
  /// the named feature maps.
  static func check(
    _ weights: InversionLossWeights, preset: String, classifier: any ImageClassifier, perceptualNetwork: (any ImageClassifier)?
  ) throws {
    let usesFeatures = weights.perceptual > 0
    if !classifier.isDifferentiable && (weights.logitConsistency > 0 || (usesFeatures && perceptualNetwork == nil)) {
      throw RunError("the \(preset) preset's logit-consistency and perceptual losses need gradients through the classifier, and \(classifier.config.architecture.rawValue) models compute logits only: use --preset paper (adversarial loss only), or import the model as TorchScript")
    }
    if usesFeatures {
      let network = perceptualNetwork ?? classifier
      let missing = weights.perceptualLayers.filter { !network.featureNames.contains($0) }
      guard !weights.perceptualLayers.isEmpty, missing.isEmpty else {
        throw RunError("the perceptual loss needs feature maps the network has (\(network.featureNames.joined(separator: ", "))); asked for \(weights.perceptualLayers.joined(separator: ", "))")
      }
    }
  }

  /// Whether there is a discriminator to train (not for the up-convolutional baseline).
  var isAdversarial: Bool { weights.adversarial > 0 }

  /// D's two hinge terms from its scores `[2B]` of `[real; fake]`; records them and the mean
  /// scores in `losses`.
  func discriminatorLoss(scores: Tensor, count: Int, into losses: inout InverterStepLosses) -> Tensor {
    let realScores = scores.narrow(dim: 0, start: 0, length: count)
    let fakeScores = scores.narrow(dim: 0, start: count, length: count)
    let (lossReal, lossFake) = HingeLoss.discriminator(real: realScores, fake: fakeScores)
    losses.discriminatorReal = lossReal.item()
    losses.discriminatorFake = lossFake.item()
    losses.scoreReal = realScores.mean().item()
    losses.scoreFake = fakeScores.mean().item()
    return lossReal + lossFake
  }

  /// G's loss for `fake [B, C, R, R]` in [−1, 1] made from `conditioning [B, K]`, against the
  /// originals `images` in [0, 1] and their raw logits `rawLogits [B, K]`; records each term in
  /// `losses`.
  func generatorLoss(
    fake: Tensor, images: Tensor, conditioning: Tensor, rawLogits: Tensor, generator: Module,
    discriminator: ProjectionDiscriminator, step: Int = 0, into losses: inout InverterStepLosses
  ) throws -> Tensor {
    var total = Tensor.zeros([], device: device)
    if weights.adversarial > 0 {
      let adversarial = HingeLoss.generator(fake: precision.run(on: device) { discriminator(fake, representation: conditioning) }.to(.float32))
      total = adversarial * weights.adversarial
      losses.terms[.adversarial] = adversarial.item()
    }
    let fake01 = (fake + 1) / 2
    // Pixel terms, each only when weighted.
    if weights.pixelL2 > 0 {
      let l2 = Loss.mse(fake01, images)
      total = total + l2 * weights.pixelL2
      losses.terms[.pixelL2] = l2.item()
    }
    if weights.pixelL1 > 0 {
      let l1 = Loss.l1(fake01, images)
      total = total + l1 * weights.pixelL1
      losses.terms[.pixelL1] = l1.item()
    }
    // The classifier's logits of the fakes, when the perceptual pass already computed them.
    var fakeLogits: Tensor?
    if weights.perceptual > 0 {
      let (distance, logitsOfFake) = try perceptualLoss(fake01, images)
      if perceptualNetwork == nil { fakeLogits = logitsOfFake }
      total = total + distance * weights.perceptual
      losses.terms[.perceptual] = distance.item()
    }
    if weights.logitConsistency > 0 {
      let jitter = weights.logitJitter
      let reused = representation == .logits && jitter == 0 ? fakeLogits : nil
      let read = jitter > 0 ? Self.shifted(fake01, by: jitter, seed: seed, step: step) : fake01
      let produced = try (reused ?? precision.run(on: device) { try classifier.represent(read, as: representation) }).to(.float32)
      let consistency = Loss.mse(produced / logitScale, rawLogits / logitScale)
      total = total + consistency * weights.logitConsistency
      losses.terms[.logitConsistency] = consistency.item()
    }
    if orthogonalRegularization > 0 {
      total = total + orthogonalPenalty(generator) * orthogonalRegularization
    }
    return total
  }

  /// The perceptual term: `FeatureDistance.channelAveraged` between the features of `fake01`
  /// and of `images`, summed over `weights.perceptualLayers`, and the feature network's logits
  /// of the fakes (which the logit term reuses when that network is the classifier).
  func perceptualLoss(_ fake01: Tensor, _ images: Tensor) throws -> (distance: Tensor, logitsOfFake: Tensor) {
    let network = perceptualNetwork ?? classifier
    let layers = weights.perceptualLayers
    let target = try withNoGrad { try precision.run(on: device) { try network.features(images, names: layers).features } }
    let (logitsOfFake, produced) = try precision.run(on: device) { try network.features(fake01, names: layers) }
    var distance = Tensor.zeros([], device: device)
    for layer in layers {
      distance = distance + FeatureDistance.channelAveraged(produced[layer]!.to(.float32), target[layer]!.to(.float32))
    }
    return (distance, logitsOfFake)
  }

  /// `images [B, C, H, W]`, each moved by its own whole-pixel shift in [−`pixels`, `pixels`] in
  /// x and in y, drawn from (`seed`, `step`), the edge pixels repeated into the uncovered band.
  /// Sampling at pixel centres makes the bilinear warp an exact shift, with gradients to every
  /// pixel that stays in view.
  static func shifted(_ images: Tensor, by pixels: Int, seed: UInt64, step: Int) -> Tensor {
    let (batch, height, width) = (images.shape[0], images.shape[2], images.shape[3])
    var rng = SplitMix64(seed: seed ^ 0x1177_E12, index: UInt64(step))
    var theta = [Float]()
    for _ in 0..<batch {
      let dx = Int(rng.next() % UInt64(2 * pixels + 1)) - pixels
      let dy = Int(rng.next() % UInt64(2 * pixels + 1)) - pixels
      // affine_grid's coordinates span 2 units across the image: a pixel is 2/W of them.
      theta += [1, 0, Float(2 * dx) / Float(width), 0, 1, Float(2 * dy) / Float(height)]
    }
    let matrices = Tensor(theta, shape: [batch, 2, 3]).to(images.device, dtype: images.dtype)
    return images.affineWarped(matrices, padding: .border)
  }

  /// BigGAN's orthogonal regularisation: ‖W Wᵀ ⊙ (1 − I)‖² over G's matrix-shaped weights.
  func orthogonalPenalty(_ module: Module) -> Tensor {
    var penalty = Tensor.zeros([], device: device)
    for (name, weight) in module.namedParameters() where weight.rank >= 2 && !name.hasPrefix("shared") {
      let w = weight.reshaped([weight.size(0), -1])
      let gram = w.matmul(w.t)
      let offDiagonal = gram * (1 - Tensor.eye(gram.size(0), device: device))
      penalty = penalty + offDiagonal.pow(2).sum()
    }
    return penalty
  }
}
