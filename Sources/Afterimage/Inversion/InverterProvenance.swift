import Foundation
import Torch

extension InverterConfig {
  /// This config with its provenance recorded, before any training step: the digests of the
  /// classifier's weights and of the perceptual network's (when the losses read one), the
  /// identity of the data under the data set's name, and for `--logits standardized` the
  /// representation's per-value mean and standard deviation over `representationValues [N, D]`.
  ///
  /// A config that already records them (a resumed run, `run` its folder) is checked instead:
  /// another classifier, another perceptual network or changed data is refused with a message
  /// that says what changed and what to do. Every entry point that trains an inverter stamps its
  /// config through here, so none can forget a check.
  public func stamped(
    classifier: any ImageClassifier, classifierPath: String, perceptualNetwork: (any ImageClassifier)? = nil,
    perceptualNetworkPath: String? = nil, train: Dataset, heldOut: Dataset, representationValues: Tensor, run: String
  ) throws -> InverterConfig {
    var config = self
    // The classifier's weights are recorded, so a resumed run (and every later load) can tell
    // when it is handed another classifier.
    let digest = try RepresentationCache.weightsDigest(classifierPath, config: classifier.config)
    if let recorded = config.classifierDigest, recorded != digest {
      throw RunError("\(run) was started with another classifier than \(classifierPath) (its weights' digest \(digest), recorded \(recorded)): resume with the classifier it was trained on, or start a new run")
    }
    config.classifierDigest = digest
    if let perceptualNetwork, let perceptualNetworkPath {
      let digest = try RepresentationCache.weightsDigest(perceptualNetworkPath, config: perceptualNetwork.config)
      if let recorded = config.perceptualDigest, recorded != digest {
        throw RunError("\(run) was started with another perceptual network than \(perceptualNetworkPath) (its weights' digest \(digest), recorded \(recorded)): resume with the network it was trained with, or start a new run")
      }
      config.perceptualDigest = digest
    }
    // The data under the data set's name, as it reads now: a resume on changed data is refused.
    let data = InverterDataIdentity(train: try DatasetIdentity.of(train), test: try DatasetIdentity.of(heldOut))
    if let recorded = config.data {
      for (split, was, now) in [("train", recorded.train, data.train), ("test", recorded.test, data.test)] {
        if let difference = was.difference(from: now) {
          throw RunError("\(run) was started on other data: the \(split) split of \(config.dataset) has changed since (\(difference)). Resume on the data it was trained on, or start a new run")
        }
      }
    }
    config.data = data
    if config.preprocessing == .standardized && config.representationMean.isEmpty {
      config.representationMean = representationValues.mean(dims: [0]).scalars(as: Double.self)
      config.representationStd = representationValues.standardDeviation(dims: [0]).scalars(as: Double.self)
    }
    return config
  }
}
