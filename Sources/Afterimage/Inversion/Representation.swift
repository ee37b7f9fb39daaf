import Foundation
import Torch

/// What of a classifier an inverter is conditioned on, and what a probe reads: its logits (the
/// paper), or one of its named feature maps (`ImageClassifier.featureNames`: `stem`, `layer1`,
/// …, `pool` for our ResNets; a submodule's output for an imported TorchScript model).
///
/// Every representation is a vector per image `[B, D]`, because the generator's conditional
/// batch norm and the discriminator's projection take one. A feature map `[B, C, H, W]` is
/// average-pooled to at most `FeatureGrid.side`² cells and flattened (`D = C·h·w`): an early
/// layer keeps a coarse layout (a 4×4 grid), which global pooling would throw away before any
/// probe or inverter could look for position. Token maps `[B, T, D]` are averaged over tokens;
/// vectors `[B, D]` (`pool`) are taken as they are.
///
/// Written as `logits` or `features:NAME` on the command line and in config.json.
public enum Representation: Hashable, Sendable, CustomStringConvertible, Codable {
  case logits
  case features(String)

  /// The most cells per side a spatial feature map keeps.
  public static let gridSide = 4

  /// Parses `logits` or `features:NAME`.
  public init(parsing text: String) throws {
    if text == "logits" {
      self = .logits
      return
    }
    let prefix = "features:"
    guard text.hasPrefix(prefix), text.count > prefix.count else {
      throw RunError("'\(text)' is not a representation: write logits, or features:NAME with NAME one of the classifier's feature maps (`afterimage classifier info` lists them)")
    }
    self = .features(String(text.dropFirst(prefix.count)))
  }

  public var description: String {
    switch self {
    case .logits: return "logits"
    case .features(let name): return "features:\(name)"
    }
  }

  /// A short name for tables and figures: `logits`, or the layer's name.
  public var label: String {
    switch self {
    case .logits: return "logits"
    case .features(let name): return name
    }
  }

  public init(from decoder: Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    do {
      try self.init(parsing: text)
    } catch let error as RunError {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
    }
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }

  /// A feature map as the vector this representation uses: `[B, C, H, W]` pooled to at most
  /// `gridSide`² cells (`[B, C·h·w]`), `[B, T, D]` averaged over T, `[B, D]` kept.
  public static func vector(_ map: Tensor, named name: String) throws -> Tensor {
    switch map.rank {
    case 2: return map
    case 3: return map.mean(dim: 1)
    case 4:
      let (h, w) = (map.shape[2], map.shape[3])
      let pooled = h <= gridSide && w <= gridSide ? map : map.adaptiveAvgPool2d((min(h, gridSide), min(w, gridSide)))
      return pooled.contiguous().reshaped([map.shape[0], -1])
    default:
      throw RunError("the feature map \(name) has shape \(map.shape); a representation needs a vector [B, D], tokens [B, T, D] or a map [B, C, H, W]")
    }
  }
}

extension ImageClassifier {
  /// `images [B, C, H, W]` in [0, 1] as `representation`: logits `[B, K]` or a pooled feature
  /// vector `[B, D]` (`Representation.vector`), on the classifier's device.
  public func represent(_ images: Tensor, as representation: Representation) throws -> Tensor {
    switch representation {
    case .logits:
      return try logits(images)
    case .features(let name):
      guard featureNames.contains(name) else {
        let known = featureNames.isEmpty ? "none (its logits only)" : featureNames.joined(separator: ", ")
        throw RunError("the classifier (\(config.architecture.rawValue)) has no feature map named \(name); it has \(known). Use --representation logits or features:NAME with one of those")
      }
      let map = try features(images, names: [name]).features[name]!
      return try Representation.vector(map, named: name)
    }
  }

  /// The length D of `representation`'s vector, from one probe image.
  public func representationSize(_ representation: Representation) throws -> Int {
    if representation == .logits { return config.classCount }
    let probe = Tensor.full([1, config.channels, config.resolution, config.resolution], 0.5, device: device)
    return try withNoGrad { try represent(probe, as: representation) }.shape[1]
  }

  /// The grid `[C, h, w]` a spatial feature map is pooled to (`Representation.vector` flattens
  /// it channel-major: entry `c·h·w + y·w + x`), from one probe image; nil for the logits, for
  /// vectors (`pool`) and for token maps, which have no layout to place.
  public func representationGrid(_ representation: Representation) throws -> [Int]? {
    guard case .features(let name) = representation, featureNames.contains(name) else { return nil }
    let probe = Tensor.full([1, config.channels, config.resolution, config.resolution], 0.5, device: device)
    let map = try withNoGrad { try features(probe, names: [name]).features[name]! }
    guard map.rank == 4 else { return nil }
    return [map.shape[1], min(map.shape[2], Representation.gridSide), min(map.shape[3], Representation.gridSide)]
  }

  /// Every representation a probe can read, from the input side to the logits: each feature
  /// map in the network's order, then the logits.
  public var representations: [Representation] {
    featureNames.map { .features($0) } + [.logits]
  }
}
