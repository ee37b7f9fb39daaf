import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage demo`: the first command a new user runs.
///
/// The inversion pipeline is not built yet, so the demo says plainly what works today, proves
/// it with a short training run, and lists what is coming.
struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show what Afterimage can do on this machine (the full demo arrives with the inverter).")

  @Option(help: "Training steps of the self-check network.")
  var steps = 60

  @Option(help: "Random seed.")
  var seed: UInt64 = 0

  @Option(help: "Folder for the demo's outputs.")
  var out = "afterimage-demo"

  @Option(help: "Folder of the shipped models.")
  var models = "models"

  func run() throws {
    Torch.ensureInitialised()
    print("Afterimage \(Afterimage.version) on libtorch \(Torch.version), \(Torch.threadCount) threads")
    print("")
    print("Ready now: the Torch layer (tensors, autograd, layers with spectral norm and self-attention,")
    print("Adam/AdamW/SGD, learning-rate schedules, safetensors files, TorchScript import).")
    print("Proving it: training a small conv net (spectral norm, batch norm, Adam) on synthetic images…")
    let result = SelfCheck.run(steps: steps, seed: seed)
    print(
      String(
        format: "  loss %.3f → %.3f over %d steps, held-out accuracy %.1f%%, %.1f ms per step",
        result.initialLoss, result.finalLoss, result.steps, result.accuracy * 100,
        result.secondsPerStep * 1000))
    print("")
    print("Ready now: data sets (Shapes with ground-truth factors, Fashion-MNIST, CIFAR, image folders),")
    print("PNG/JPEG codecs, sample grids, augmentations. Drawing 64 Shapes images…")
    let outFolder = URL(fileURLWithPath: out)
    let shapes = try ShapesDataset(split: .test, count: 64, seed: seed)
    let batch = try shapes.batch(at: Array(0..<64))
    let grid = ImageGrid.make(batch.images, columns: 8, scale: 3)
    let gridURL = outFolder.appendingPathComponent("shapes.png")
    try PNG.write(grid, to: gridURL)
    let first = batch.factors![0]
    print(String(format: "  wrote %@; image 0 is a %@ of hue %.2f, size %.2f, centred at (%.2f, %.2f)",
                 gridURL.path, shapes.classNames[0], first.objectHue, first.size, first.centreX, first.centreY))
    if let fashion = try? FashionMNIST.load(split: .test) {
      let preview = try fashion.batch(at: Array(0..<32))
      let fashionURL = outFolder.appendingPathComponent("fashion-mnist.png")
      try PNG.write(ImageGrid.make(preview.images, columns: 8, scale: 3), to: fashionURL)
      print("  wrote \(fashionURL.path) (Fashion-MNIST test images 0–31)")
    }
    try showClassifiers()
    print("")
    print("Built, not yet shipped: the inverter (BigGAN generator on logits, projection discriminator,")
    print("up-convolutional and optimisation baselines): `afterimage inverter train --classifier DIR`.")
    print("Coming next: shipped inverters, then what survives in the logits as numbers (metrics, the")
    print("paper's experiments, an HTML report). This command will then run the key experiments on the")
    print("shipped models and write report.html; today it trains nothing beyond the self-check above.")
  }

  /// Scores the shipped classifiers: clean accuracy, and accuracy under PGD-20 at the ε their
  /// robust sibling was trained for.
  func showClassifiers() throws {
    let pairs = [("shapes", 8.0 / 255), ("fashion-mnist", 0.1)]
    let available = pairs.flatMap { data, _ in ["standard", "robust"].map { "\(models)/classifiers/\(data)-\($0)" } }
      .filter { FileManager.default.fileExists(atPath: "\($0)/model.safetensors") }
    print("")
    guard !available.isEmpty else {
      print("Classifiers: none shipped in \(models)/classifiers yet (scripts/train-classifiers trains them).")
      return
    }
    print("Ready now: classifiers (ResNets, standard and PGD-trained), attacks, TorchScript import.")
    print("The shipped classifiers on held-out images (clean: 1000 images; PGD-20: the first 200):")
    print("  model                         clean    PGD-20 L∞ (ε)")
    for (data, epsilon) in pairs {
      for kind in ["standard", "robust"] {
        let path = "\(models)/classifiers/\(data)-\(kind)"
        guard available.contains(path) else { continue }
        let classifier = try Classifiers.load(path)
        let test = try DatasetSource(data).open(split: .test, resolution: classifier.config.resolution).dataset
        let clean = try ClassifierEvaluation.evaluate(classifier, on: test, limit: 1000)
        let attacked = try ClassifierEvaluation.evaluate(
          classifier, on: test, attack: AttackSpec(norm: .linf, epsilon: epsilon, steps: 20), limit: 200)
        let name = "\(data)-\(kind)".padding(toLength: 28, withPad: " ", startingAt: 0)
        print(String(format: "  %@  %6.2f%%   %6.2f%% (%@)", name, 100 * clean.cleanAccuracy, 100 * (attacked.attackAccuracy ?? 0), AttackSpec.format(epsilon)))
      }
    }
  }
}
