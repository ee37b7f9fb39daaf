import Foundation
import Torch

/// The shape of a BigGAN generator and discriminator at one resolution, as data (not code
/// branches), scaled by a base width `ch`. CPU-scale models narrow as resolution grows, so the
/// multipliers fall from the bottom of G to its top.
public struct BigGANArchitecture: Equatable, Sendable {
  public let resolution: Int
  /// G: channel multipliers at 4×4 and after each up-block (one more entry than blocks).
  public let generatorChannels: [Int]
  /// D: channel multipliers of each down-block's output.
  public let discriminatorChannels: [Int]
  /// D: whether each block halves the resolution.
  public let discriminatorDownsamples: [Bool]
  /// Resolutions at which a self-attention block follows (in G after the up-block producing
  /// it, in D after the down-block producing it).
  public let attention: [Int]

  /// The table for 32, 64 and 128 pixels.
  public static func forResolution(_ resolution: Int) throws -> BigGANArchitecture {
    switch resolution {
    case 32:
      return BigGANArchitecture(
        resolution: 32, generatorChannels: [4, 4, 2, 1], discriminatorChannels: [1, 2, 4, 4],
        discriminatorDownsamples: [true, true, false, false], attention: [16])
    case 64:
      return BigGANArchitecture(
        resolution: 64, generatorChannels: [4, 4, 2, 1, 1], discriminatorChannels: [1, 2, 4, 4, 4],
        discriminatorDownsamples: [true, true, true, false, false], attention: [32])
    case 128:
      return BigGANArchitecture(
        resolution: 128, generatorChannels: [8, 4, 4, 2, 1, 1], discriminatorChannels: [1, 2, 4, 4, 8, 8],
        discriminatorDownsamples: [true, true, true, true, false, false], attention: [64])
    default:
      throw RunError("the BigGAN inverter has architectures for 32, 64 and 128 pixels, not \(resolution)")
    }
  }

  /// Up-blocks in G (each doubles the resolution from 4×4).
  public var generatorBlocks: Int { generatorChannels.count - 1 }
}

/// Batch norm whose gain and bias are functions of a conditioning vector (BigGAN's ccbn):
/// `y = BN(x) · (1 + gain(c)) + bias(c)`, with `gain` and `bias` spectrally normalised linear maps.
public final class ConditionalBatchNorm: Module {
  @Child var norm: BatchNorm2d  // bn
  @Child var gain: Linear
  @Child var bias: Linear

  init(channels: Int, conditionSize: Int, generator: Generator?) {
    _norm = Child(wrappedValue: BatchNorm2d(channels, affine: false), "bn")
    gain = Linear(conditionSize, channels, bias: false, spectralNorm: true, generator: generator)
    bias = Linear(conditionSize, channels, bias: false, spectralNorm: true, generator: generator)
    super.init()
  }

  /// `x [B, C, H, W]`, `condition [B, cond]` → `[B, C, H, W]`.
  func callAsFunction(_ x: Tensor, condition: Tensor) -> Tensor {
    let scale = (gain(condition) + 1).unsqueezed(2).unsqueezed(3)  // [B, C, 1, 1]
    let shift = bias(condition).unsqueezed(2).unsqueezed(3)
    return norm(x) * scale + shift
  }

  /// `relu(self(x, condition: condition))` as one fused kernel on the CPU (`BatchNorm2d.relu`).
  func relu(_ x: Tensor, condition: Tensor) -> Tensor {
    norm.relu(x, scale: gain(condition) + 1, shift: bias(condition))  // scale, shift [B, C]
  }
}

/// BigGAN's generator residual block: CBN → ReLU → upsample → conv3×3 → CBN → ReLU → conv3×3,
/// plus an upsampled 1×1-conv shortcut.
public final class GeneratorBlock: Module {
  @Child var bn1: ConditionalBatchNorm
  @Child var conv1: Conv2d
  @Child var bn2: ConditionalBatchNorm
  @Child var conv2: Conv2d
  @Child var shortcut: Conv2d  // conv_sc

  init(_ input: Int, _ output: Int, conditionSize: Int, generator: Generator?) {
    bn1 = ConditionalBatchNorm(channels: input, conditionSize: conditionSize, generator: generator)
    conv1 = Conv2d(input, output, kernelSize: 3, padding: 1, spectralNorm: true, generator: generator)
    bn2 = ConditionalBatchNorm(channels: output, conditionSize: conditionSize, generator: generator)
    conv2 = Conv2d(output, output, kernelSize: 3, padding: 1, spectralNorm: true, generator: generator)
    _shortcut = Child(wrappedValue: Conv2d(input, output, kernelSize: 1, spectralNorm: true, generator: generator), "conv_sc")
    super.init()
  }

  /// `[B, in, H, W]` → `[B, out, 2H, 2W]`.
  func callAsFunction(_ x: Tensor, condition: Tensor) -> Tensor {
    var h = bn1.relu(x, condition: condition).upsampleNearest(scale: 2)
    h = conv2(bn2.relu(conv1(h), condition: condition))
    return h + shortcut(x.upsampleNearest(scale: 2))
  }
}

/// What the generator's 4×4 seed is computed from (`inverter train --seed-input`).
public enum SeedInput: String, Codable, CaseIterable, Sendable {
  /// The first noise chunk alone, as BigGAN's class-conditional generator: the representation
  /// then reaches the picture only through the blocks' conditional batch norms, a gain and a
  /// bias per channel, the same at every pixel, so where and how big are drawn only indirectly.
  case noise
  /// `[z₀, embedding(ℓ)]`, as BigGAN-deep feeds its first layer: the representation reaches
  /// the layout of the 4×4 seed directly. An inverter must draw where a class does not say.
  case noiseAndRepresentation = "noise+representation"
  /// `[z₀, embedding(ℓ)]` as above, plus the pooled feature map itself placed on the 4×4 grid
  /// (a 1×1 convolution of each cell, added to the seed): what a feature map holds at a place
  /// starts at that place. Only for a spatial feature map (`--representation features:NAME`
  /// of a convolutional layer), whose grid the config records.
  case noiseRepresentationAndMap = "noise+representation+map"

  /// Whether the embedding of the representation enters the seed's linear map.
  var seedTakesEmbedding: Bool { self != .noise }
}

/// The logit-conditioned generator `G(ℓ, z)`: BigGAN with its class embedding replaced by a
/// learned linear map of the classifier's logits (not spectrally normalised). The noise `z` is
/// split into one chunk for the 4×4 seed plus one per up-block; each block's conditional batch
/// norms see `[embedding(ℓ), z_i]`, and the seed sees `z₀` or `[z₀, embedding(ℓ)]` (`SeedInput`).
public final class LogitGenerator: Module {
  public let architecture: BigGANArchitecture
  public let noiseSize: Int
  public let representationSize: Int
  public let channels: Int
  public let seedInput: SeedInput
  let chunkSize: Int
  /// The logit embedding (`shared`, BigGAN's name for its class embedding).
  @Child var embedding: Linear
  /// The map from the first noise chunk (and the embedding, per `seedInput`) to the 4×4 seed (`linear`).
  @Child var seed: Linear
  /// With `.noiseRepresentationAndMap`: the 1×1 convolution from the feature map's channels to
  /// the seed's (`map_seed`); nil otherwise.
  @Child var mapSeed: Conv2d?
  /// The representation's grid `[C, h, w]` when the map is placed in the seed.
  let grid: [Int]?
  @Child var blocks: ModuleList<GeneratorBlock>
  /// Self-attention after the blocks that have it, by block index (`attention.<index>`); nil if none.
  @Child var attention: ModuleDict<SelfAttention>?
  @Child var outputNorm: BatchNorm2d  // output_bn
  @Child var outputConv: Conv2d  // output_conv
  let baseChannels: Int

  /// - Parameters:
  ///   - representationSize: K, the classifier's number of classes.
  ///   - noiseSize: length of `z` (rounded down to a multiple of blocks + 1).
  ///   - embeddingSize: width of the logit embedding.
  ///   - ch: the base width the architecture's multipliers scale.
  ///   - channels: output image channels (1 or 3).
  ///   - grid: `[C, h, w]` of a spatial representation (C·h·w = `representationSize`, h and w dividing
  ///     4), needed by `.noiseRepresentationAndMap` and ignored otherwise.
  public init(
    architecture: BigGANArchitecture, representationSize: Int, noiseSize: Int = 64, embeddingSize: Int = 64, ch: Int = 16,
    channels: Int = 3, useAttention: Bool = true, seedInput: SeedInput = .noise, grid: [Int]? = nil, generator: Generator? = nil
  ) {
    self.architecture = architecture
    self.representationSize = representationSize
    self.channels = channels
    self.seedInput = seedInput
    let slots = architecture.generatorBlocks + 1
    chunkSize = max(1, noiseSize / slots)
    self.noiseSize = chunkSize * slots
    baseChannels = ch * architecture.generatorChannels[0]
    let conditionSize = embeddingSize + chunkSize
    _embedding = Child(wrappedValue: Linear(representationSize, embeddingSize, bias: false, generator: generator), "shared")
    let seedWidth = chunkSize + (seedInput.seedTakesEmbedding ? embeddingSize : 0)
    _seed = Child(wrappedValue: Linear(seedWidth, baseChannels * 16, spectralNorm: true, generator: generator), "linear")
    let placed = seedInput == .noiseRepresentationAndMap ? grid : nil
    if let placed {
      precondition(placed.count == 3 && placed.reduce(1, *) == representationSize && 4 % placed[1] == 0 && 4 % placed[2] == 0,
                   "a grid [C, h, w] with C·h·w = \(representationSize) and h, w dividing 4")
    }
    self.grid = placed
    let seedChannels = baseChannels
    _mapSeed = Child(
      wrappedValue: placed.map { Conv2d($0[0], seedChannels, kernelSize: 1, spectralNorm: true, generator: generator) }, "map_seed")
    var blocks: [GeneratorBlock] = []
    var attention: [Int: SelfAttention] = [:]
    for index in 0..<architecture.generatorBlocks {
      let input = ch * architecture.generatorChannels[index]
      let output = ch * architecture.generatorChannels[index + 1]
      blocks.append(GeneratorBlock(input, output, conditionSize: conditionSize, generator: generator))
      let resolution = 8 << index
      if useAttention && architecture.attention.contains(resolution) && output >= 8 {
        attention[index] = SelfAttention(channels: output, generator: generator)
      }
    }
    self.blocks = ModuleList(blocks)
    self.attention = attentionByBlock(attention)
    let last = ch * architecture.generatorChannels.last!
    _outputNorm = Child(wrappedValue: BatchNorm2d(last), "output_bn")
    _outputConv = Child(
      wrappedValue: Conv2d(last, channels, kernelSize: 3, padding: 1, spectralNorm: true, generator: generator), "output_conv")
    super.init()
    // BigGAN initialises G's weights orthogonally.
    for (name, parameter) in namedParameters() where name.hasSuffix("weight") || name.hasSuffix("weight_orig") {
      if parameter.rank >= 2 { Init.orthogonal(parameter, generator: generator) }
    }
  }

  /// `representation [B, D]` (already preprocessed; logits: D = K), `noise [B, noiseSize]` → images `[B, C, R, R]` in (−1, 1).
  public func callAsFunction(representation: Tensor, noise: Tensor) -> Tensor {
    let batch = representation.shape[0]
    let chunks = noise.split(size: chunkSize, dim: 1)  // blocks + 1 pieces of [B, chunk]
    let embedded = embedding(representation)  // [B, E]
    var h = seedLayout(representation: representation, embedded: embedded, noise: chunks[0])  // [B, ch·m0, 4, 4]
    for (index, block) in blocks.enumerated() {
      let condition = Tensor.cat([embedded, chunks[index + 1]], dim: 1)  // [B, E + chunk]
      h = block(h, condition: condition)  // doubles H and W
      if let layer = attention?[String(index)] { h = layer(h) }
    }
    return outputConv(outputNorm.relu(h)).tanh()  // [B, C, R, R]
  }

  /// The 4×4 seed the blocks grow the picture from, `[B, ch·m0, 4, 4]`: the seed's linear map
  /// of the noise chunk `[B, chunk]` (and of `embedded [B, E]`, per `seedInput`), plus with a
  /// placed map the 1×1 convolution of `representation [B, C·h·w]` seen as `[B, C, h, w]`, each cell
  /// spread over the 4/h × 4/w seed cells it covers.
  func seedLayout(representation: Tensor, embedded: Tensor, noise chunk: Tensor) -> Tensor {
    let batch = representation.shape[0]
    let seedCode = seedInput.seedTakesEmbedding ? Tensor.cat([chunk, embedded], dim: 1) : chunk  // [B, chunk (+ E)]
    let layout = seed(seedCode).view([batch, baseChannels, 4, 4])
    guard let mapSeed, let grid else { return layout }
    let map = representation.view([batch, grid[0], grid[1], grid[2]])  // [B, C, h, w]
    return layout + mapSeed(grid[1] == 4 && grid[2] == 4 ? map : map.upsampleNearest(to: (4, 4)))
  }
}

/// BigGAN's discriminator residual block: (ReLU →) conv3×3 → ReLU → conv3×3 (→ 2×2 average
/// pool), plus a 1×1-conv shortcut. The first block skips the leading ReLU (its input is the image).
public final class DiscriminatorBlock: Module {
  @Child var conv1: Conv2d
  @Child var conv2: Conv2d
  @Child var shortcut: Conv2d?  // conv_sc
  let downsample: Bool
  let preactivation: Bool

  init(_ input: Int, _ output: Int, downsample: Bool, preactivation: Bool, generator: Generator?) {
    conv1 = Conv2d(input, output, kernelSize: 3, padding: 1, spectralNorm: true, generator: generator)
    conv2 = Conv2d(output, output, kernelSize: 3, padding: 1, spectralNorm: true, generator: generator)
    _shortcut = Child(
      wrappedValue: input != output || downsample ? Conv2d(input, output, kernelSize: 1, spectralNorm: true, generator: generator) : nil,
      "conv_sc")
    self.downsample = downsample
    self.preactivation = preactivation
    super.init()
  }

  /// `[B, in, H, W]` → `[B, out, H/2, W/2]` (or same size without downsampling).
  func callAsFunction(_ x: Tensor) -> Tensor {
    var h = preactivation ? x.relu() : x
    h = conv2(conv1(h).relu())
    if downsample { h = h.avgPool2d(kernel: 2) }
    var skip = x
    if let shortcut {
      // Convolve before pooling after a pre-activated block, after pooling for the first one
      // (BigGAN's order, which keeps the first block's shortcut cheap).
      if preactivation {
        skip = shortcut(skip)
        if downsample { skip = skip.avgPool2d(kernel: 2) }
      } else {
        if downsample { skip = skip.avgPool2d(kernel: 2) }
        skip = shortcut(skip)
      }
    }
    return h + skip
  }
}

/// The projection discriminator `D(x, ℓ)`: residual down-blocks, global sum pooling to φ(x),
/// then `linear(φ(x)) + ⟨SN-linear(ℓ), φ(x)⟩` (Miyato & Koyama's projection with the logits in
/// place of a class embedding). Real and fake images are both paired with the real image's logits.
public final class ProjectionDiscriminator: Module {
  public let architecture: BigGANArchitecture
  @Child var blocks: ModuleList<DiscriminatorBlock>
  /// Self-attention after the block that has it, by block index (`attention.<index>`); nil if none.
  @Child var attention: ModuleDict<SelfAttention>?
  @Child var head: Linear  // linear
  @Child var projection: Linear  // embed

  public init(architecture: BigGANArchitecture, representationSize: Int, ch: Int = 16, channels: Int = 3, useAttention: Bool = true, generator: Generator? = nil) {
    self.architecture = architecture
    var input = channels
    var resolution = architecture.resolution
    var blocks: [DiscriminatorBlock] = []
    var attention: [Int: SelfAttention] = [:]
    for (index, (multiplier, down)) in zip(architecture.discriminatorChannels, architecture.discriminatorDownsamples).enumerated() {
      let output = ch * multiplier
      blocks.append(DiscriminatorBlock(input, output, downsample: down, preactivation: index > 0, generator: generator))
      if down { resolution /= 2 }
      if useAttention && architecture.attention.contains(resolution) && attention.isEmpty && output >= 8 && down {
        attention[index] = SelfAttention(channels: output, generator: generator)
      }
      input = output
    }
    self.blocks = ModuleList(blocks)
    self.attention = attentionByBlock(attention)
    _head = Child(wrappedValue: Linear(input, 1, spectralNorm: true, generator: generator), "linear")
    _projection = Child(
      wrappedValue: Linear(representationSize, input, bias: false, spectralNorm: true, generator: generator), "embed")
    super.init()
    for (name, parameter) in namedParameters() where name.hasSuffix("weight_orig") && parameter.rank >= 2 {
      Init.orthogonal(parameter, generator: generator)
    }
  }

  /// `images [B, C, R, R]` in [−1, 1] and `representation [B, D]` → one score per image `[B]`.
  public func callAsFunction(_ images: Tensor, representation: Tensor) -> Tensor {
    var h = images
    for (index, block) in blocks.enumerated() {
      h = block(h)
      if let layer = attention?[String(index)] { h = layer(h) }
    }
    let features = h.relu().sum(dims: [2, 3])  // φ(x): [B, C]
    let unconditional = head(features).squeezed(1)  // [B]
    let conditional = (projection(representation) * features).sum(dim: 1)  // ⟨W ℓ, φ(x)⟩: [B]
    return unconditional + conditional
  }
}

/// Self-attention layers keyed by the index of the block they follow, named `attention.<index>`
/// in index order; nil when there are none.
private func attentionByBlock(_ layers: [Int: SelfAttention]) -> ModuleDict<SelfAttention>? {
  layers.isEmpty ? nil : ModuleDict(layers.sorted { $0.key < $1.key }.map { (String($0.key), $0.value) })
}
