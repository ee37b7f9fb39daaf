import Foundation
import Torch

/// A classifier body that returns logits and, on request, named intermediate feature maps
/// (for perceptual losses and probes).
public protocol FeatureNetwork: Layer {
  /// Feature maps this network can return, in the order they are computed.
  var featureNames: [String] { get }
  /// Logits `[B, K]` for normalised inputs, and the feature maps named in `keep`.
  func forward(_ x: Tensor, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor])
}

extension FeatureNetwork {
  public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, keeping: []).logits }
}

/// Convolution without bias (batch norm follows), initialised as torchvision does (He, fan-out).
func convolution(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, padding: Int = 0, generator: Generator?) -> Conv2d {
  let conv = Conv2d(input, output, kernelSize: kernel, stride: stride, padding: padding, bias: false, generator: generator)
  Init.kaimingNormal(conv.weight, fanOutMode: true, generator: generator)
  return conv
}

/// A residual block's shortcut from `input` to `output` channels at `stride`: nil (the identity)
/// where the block keeps the shape, else 1×1 convolution and batch norm, named `downsample.0`
/// and `downsample.1` as in torchvision.
func downsample(_ input: Int, _ output: Int, stride: Int, generator: Generator?) -> Sequential? {
  guard stride != 1 || input != output else { return nil }
  return Sequential(convolution(input, output, kernel: 1, stride: stride, generator: generator), BatchNorm2d(output))
}

/// A residual block's output: `relu(norm(h) + shortcut(x))`, the shortcut the identity when nil,
/// in one fused kernel with the batch norm (`BatchNorm2d.relu`).
func residualOutput(_ norm: BatchNorm2d, _ h: Tensor, _ x: Tensor, shortcut: Sequential?) -> Tensor {
  norm.relu(h, plus: shortcut?(x) ?? x)
}

/// A ResNet's stages, named `layer1`, `layer2`, … as in torchvision: `counts[i]` blocks in stage
/// i, the first block of every stage after the first striding 2. `makeBlock(stage, input,
/// stride)` builds one block from `input` channels and says how many channels it puts out. The
/// blocks are built in order, so random initialisation draws in torchvision's order.
func residualStages(
  _ counts: [Int], input: Int,
  makeBlock: (_ stage: Int, _ input: Int, _ stride: Int) -> (block: any Layer, output: Int)
) -> (stages: Children<Sequential>, output: Int) {
  var channels = input
  let stages = counts.enumerated().map { stage, count in
    Sequential((0..<count).map { index -> any Layer in
      let made = makeBlock(stage, channels, stage > 0 && index == 0 ? 2 : 1)
      channels = made.output
      return made.block
    })
  }
  return (Children(wrappedValue: stages, named: { "layer\($0 + 1)" }), channels)
}

/// A ResNet after its stem `h` (`[B, C, H, W]`, the feature `stem`): the stages (features
/// `layer1`, …; each after the first halves H and W), global average pooling (`pool`, `[B, C]`)
/// and the classifier `fc`; the features named in `keep` come back beside the logits.
func residualForward(stem h: Tensor, stages: [Sequential], fc: Linear, keeping keep: Set<String>)
  -> (logits: Tensor, features: [String: Tensor])
{
  var features: [String: Tensor] = [:]
  var h = h
  if keep.contains("stem") { features["stem"] = h }
  for (index, stage) in stages.enumerated() {
    h = stage(h)
    if keep.contains("layer\(index + 1)") { features["layer\(index + 1)"] = h }
  }
  let pooled = h.mean(dims: [2, 3])
  if keep.contains("pool") { features["pool"] = pooled }
  return (fc(pooled), features)
}

/// Two 3×3 convolutions with a skip connection (ResNet-18/20/34).
public final class BasicBlock: Module, Layer {
  @Child var conv1: Conv2d
  @Child var bn1: BatchNorm2d
  @Child var conv2: Conv2d
  @Child var bn2: BatchNorm2d
  @Child var shortcut: Sequential?  // downsample

  init(_ input: Int, _ output: Int, stride: Int, generator: Generator?) {
    conv1 = convolution(input, output, kernel: 3, stride: stride, padding: 1, generator: generator)
    bn1 = BatchNorm2d(output)
    conv2 = convolution(output, output, kernel: 3, padding: 1, generator: generator)
    bn2 = BatchNorm2d(output)
    _shortcut = Child(wrappedValue: downsample(input, output, stride: stride, generator: generator), "downsample")
    super.init()
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    residualOutput(bn2, conv2(bn1.relu(conv1(x))), x, shortcut: shortcut)
  }
}

/// 1×1 reduce, 3×3, 1×1 expand (×4) with a skip connection (ResNet-50); stride on the 3×3 as in
/// torchvision ("ResNet v1.5").
public final class Bottleneck: Module, Layer {
  static let expansion = 4
  @Child var conv1: Conv2d
  @Child var bn1: BatchNorm2d
  @Child var conv2: Conv2d
  @Child var bn2: BatchNorm2d
  @Child var conv3: Conv2d
  @Child var bn3: BatchNorm2d
  @Child var shortcut: Sequential?  // downsample

  init(_ input: Int, width: Int, stride: Int, generator: Generator?) {
    let output = width * Self.expansion
    conv1 = convolution(input, width, kernel: 1, generator: generator)
    bn1 = BatchNorm2d(width)
    conv2 = convolution(width, width, kernel: 3, stride: stride, padding: 1, generator: generator)
    bn2 = BatchNorm2d(width)
    conv3 = convolution(width, output, kernel: 1, generator: generator)
    bn3 = BatchNorm2d(output)
    _shortcut = Child(wrappedValue: downsample(input, output, stride: stride, generator: generator), "downsample")
    super.init()
  }

  public func callAsFunction(_ x: Tensor) -> Tensor {
    var h = bn1.relu(conv1(x))
    h = bn2.relu(conv2(h))
    return residualOutput(bn3, conv3(h), x, shortcut: shortcut)
  }
}

/// ResNets for small images (He et al. 2016, CIFAR variants): a 3×3 stem without pooling, then
/// stages of basic blocks. ResNet-20: 3 stages of 3 blocks, 16·w/32·w/64·w channels. ResNet-18:
/// 4 stages of 2 blocks, 64·w…512·w channels. Names follow torchvision (`layer2.0.conv1.weight`).
public final class CIFARResNet: Module, FeatureNetwork {
  @Child var conv1: Conv2d
  @Child var bn1: BatchNorm2d
  /// The stages, named `layer1`, `layer2`, … as in torchvision.
  @Children var stages: [Sequential]
  @Child var fc: Linear
  public let featureNames: [String]

  /// - Parameters:
  ///   - blocks: blocks per stage (ResNet-20: [3, 3, 3]; ResNet-18: [2, 2, 2, 2]).
  ///   - widths: channels per stage before the multiplier.
  public init(blocks: [Int], widths: [Int], widthMultiplier: Double, inputChannels: Int, classes: Int, generator: Generator?) {
    let channels = widths.map { scaledWidth($0, widthMultiplier) }
    conv1 = convolution(inputChannels, channels[0], kernel: 3, padding: 1, generator: generator)
    bn1 = BatchNorm2d(channels[0])
    let built = residualStages(blocks, input: channels[0]) { stage, input, stride in
      (BasicBlock(input, channels[stage], stride: stride, generator: generator), channels[stage])
    }
    _stages = built.stages
    fc = Linear(built.output, classes, generator: generator)
    featureNames = ["stem"] + (1...blocks.count).map { "layer\($0)" } + ["pool"]
    super.init()
  }

  public func forward(_ x: Tensor, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor]) {
    residualForward(stem: bn1.relu(conv1(x)), stages: stages, fc: fc, keeping: keep)  // stem [B, c0, H, W]
  }
}

/// torchvision's ResNet-50 for ImageNet-sized inputs (7×7 stem, max pooling, bottleneck stages
/// of 3, 4, 6, 3 blocks); its parameter names equal torchvision's, so torchvision weights saved
/// as safetensors load directly.
public final class ResNet50: Module, FeatureNetwork {
  @Child var conv1: Conv2d
  @Child var bn1: BatchNorm2d
  /// The stages, named `layer1`, `layer2`, … as in torchvision.
  @Children var stages: [Sequential]
  @Child var fc: Linear
  public let featureNames = ["stem", "layer1", "layer2", "layer3", "layer4", "pool"]

  public init(inputChannels: Int = 3, classes: Int = 1000, widthMultiplier: Double = 1, generator: Generator? = nil) {
    let base = scaledWidth(64, widthMultiplier, minimum: 8)
    conv1 = convolution(inputChannels, base, kernel: 7, stride: 2, padding: 3, generator: generator)
    bn1 = BatchNorm2d(base)
    let built = residualStages([3, 4, 6, 3], input: base) { stage, input, stride in
      let width = base << stage
      return (Bottleneck(input, width: width, stride: stride, generator: generator), width * Bottleneck.expansion)
    }
    _stages = built.stages
    fc = Linear(built.output, classes, generator: generator)
    super.init()
  }

  public func forward(_ x: Tensor, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor]) {
    let stem = bn1.relu(conv1(x)).maxPool2d(kernel: 3, stride: 2, padding: 1)  // [B, 64, H/4, W/4]
    return residualForward(stem: stem, stages: stages, fc: fc, keeping: keep)  // pool [B, 2048]
  }
}

/// A VGG-style classifier (Simonyan & Zisserman 2015, with batch norm as torchvision's `vgg*_bn`),
/// the second architecture family the studies compare with the ResNets: no residual connections,
/// three stages of two 3×3 convolution + batch norm + ReLU layers at 32·w/64·w/128·w channels,
/// 2× max pooling between stages, global average pooling and one linear layer. At width 0.5 it
/// has about as many parameters as ResNet-20 at width 0.5 (72.7k against 68.6k).
public final class VGGNet: Module, FeatureNetwork {
  /// The stages, named `block1`, `block2`, `block3`.
  @Children var blocks: [Sequential]
  @Child var fc: Linear
  public let featureNames = ["block1", "block2", "block3", "pool"]

  public init(inputChannels: Int, classes: Int, widthMultiplier: Double = 1, generator: Generator? = nil) {
    let widths = [32, 64, 128].map { scaledWidth($0, widthMultiplier) }
    var input = inputChannels
    let blocks = widths.map { output -> Sequential in
      defer { input = output }
      return Sequential(
        convolution(input, output, kernel: 3, padding: 1, generator: generator), BatchNorm2d(output), Lambda { $0.relu() },
        convolution(output, output, kernel: 3, padding: 1, generator: generator), BatchNorm2d(output), Lambda { $0.relu() })
    }
    _blocks = Children(wrappedValue: blocks, named: { "block\($0 + 1)" })
    fc = Linear(widths[2], classes, generator: generator)
    super.init()
  }

  public func forward(_ x: Tensor, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor]) {
    plainForward(x, blocks: blocks, fc: fc, keeping: keep)
  }
}

/// The independent evaluation classifier: a plain VGG-style network (no residual connections,
/// group normalisation, max pooling) so that it shares neither architecture nor weights with
/// the ResNets being inverted, and its judgement of a reconstruction is a second opinion.
public final class EvaluationNet: Module, FeatureNetwork {
  /// The convolution blocks, named `block1`, `block2`, `block3`.
  @Children var blocks: [Sequential]
  @Child var fc: Linear
  public let featureNames = ["block1", "block2", "block3", "pool"]

  public init(inputChannels: Int, classes: Int, widthMultiplier: Double = 1, generator: Generator? = nil) {
    // Multiples of 8, so that group normalisation's 8 groups divide every width.
    let widths = [32, 64, 128].map { scaledWidth($0, widthMultiplier, multiple: 8, minimum: 8) }
    let blocks = groupNormBlocks(input: inputChannels, widths: widths, generator: generator)
    _blocks = Children(wrappedValue: blocks, named: { "block\($0 + 1)" })
    fc = Linear(widths[2], classes, generator: generator)
    super.init()
  }

  public func forward(_ x: Tensor, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor]) {
    plainForward(x, blocks: blocks, fc: fc, keeping: keep)
  }
}

/// VGGNet's and EvaluationNet's forward pass: each block (features `block1`, …), 2× max pooling
/// between blocks, global average pooling (`pool`, `[B, C]`) and the classifier `fc`.
func plainForward(_ x: Tensor, blocks: [Sequential], fc: Linear, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor]) {
  var features: [String: Tensor] = [:]
  var h = x
  for (index, block) in blocks.enumerated() {
    h = block(h)  // [B, C_i, H / 2^i, W / 2^i]
    if keep.contains("block\(index + 1)") { features["block\(index + 1)"] = h }
    if index < blocks.count - 1 { h = h.maxPool2d(kernel: 2) }
  }
  let pooled = h.mean(dims: [2, 3])  // [B, C]
  if keep.contains("pool") { features["pool"] = pooled }
  return (fc(pooled), features)
}

/// EvaluationNet's and FactorNet's convolution blocks: per width, two 3×3 convolutions, each
/// followed by group normalisation (8 groups) and ReLU.
func groupNormBlocks(input: Int, widths: [Int], generator: Generator?) -> [Sequential] {
  var input = input
  return widths.map { output in
    defer { input = output }
    return Sequential(
      Conv2d(input, output, kernelSize: 3, padding: 1, generator: generator), GroupNorm(groups: 8, channels: output),
      Lambda { $0.relu() },
      Conv2d(output, output, kernelSize: 3, padding: 1, generator: generator), GroupNorm(groups: 8, channels: output),
      Lambda { $0.relu() })
  }
}

/// The factor regressor's network: EvaluationNet's convolution blocks with two coordinate
/// channels (x and y in [−1, 1]) appended to the input, and a head that reads the last 4×4 map
/// both flattened (where a thing is stays readable) and averaged (colours and brightness, the
/// image's global statistics, are one step away). Regression targets, not classes, are its
/// outputs (`FactorRegressor`).
public final class FactorNet: Module, FeatureNetwork {
  /// The convolution blocks, named `block1`, `block2`, `block3`.
  @Children var blocks: [Sequential]
  @Child var hidden: Linear
  @Child var fc: Linear
  public let featureNames = ["block1", "block2", "block3", "pool"]

  public init(inputChannels: Int, outputs: Int, resolution: Int, widthMultiplier: Double = 1, generator: Generator? = nil) {
    let widths = [32, 64, 128].map { scaledWidth($0, widthMultiplier, multiple: 8, minimum: 8) }
    let blocks = groupNormBlocks(input: inputChannels + 2, widths: widths, generator: generator)  // + the coordinate channels
    _blocks = Children(wrappedValue: blocks, named: { "block\($0 + 1)" })
    // Three 2× poolings: a 32-pixel input ends as a 4×4 map.
    let side = max(1, resolution / 8)
    hidden = Linear(widths[2] * (side * side + 1), 256, generator: generator)
    fc = Linear(256, outputs, generator: generator)
    super.init()
  }

  public func forward(_ x: Tensor, keeping keep: Set<String>) -> (logits: Tensor, features: [String: Tensor]) {
    let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
    let ys = Tensor.linspace(-1, 1, count: height, dtype: x.dtype, device: x.device).reshaped([1, 1, height, 1]).expanded([batch, 1, height, width])
    let xs = Tensor.linspace(-1, 1, count: width, dtype: x.dtype, device: x.device).reshaped([1, 1, 1, width]).expanded([batch, 1, height, width])
    var features: [String: Tensor] = [:]
    var h = Tensor.cat([x, xs, ys], dim: 1)  // [B, C + 2, H, W]
    for (index, block) in blocks.enumerated() {
      h = block(h).maxPool2d(kernel: 2)  // [B, C_i, H / 2^(i+1), W / 2^(i+1)]
      if keep.contains("block\(index + 1)") { features["block\(index + 1)"] = h }
    }
    let pooled = hidden(Tensor.cat([h.flattened(from: 1), h.mean(dims: [2, 3])], dim: 1)).relu()  // [B, C·16 + C] → [B, 256]
    if keep.contains("pool") { features["pool"] = pooled }
    return (fc(pooled), features)
  }
}

/// `base` channels times the width multiplier, rounded to the nearest multiple of `multiple`
/// and at least `minimum` (itself a multiple): the one rounding every family here uses.
func scaledWidth(_ base: Int, _ multiplier: Double, multiple: Int = 1, minimum: Int = 4) -> Int {
  max(minimum, multiple * Int((Double(base) * multiplier / Double(multiple)).rounded()))
}
