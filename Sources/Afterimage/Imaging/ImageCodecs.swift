import CImaging
import Foundation
import Torch

/// An error reading or writing an image or data file, naming the file and what to do.
public struct ImageError: Error, CustomStringConvertible {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Runs a codec call that reports failures through a message buffer.
private func callCodec(_ what: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
  var message = [CChar](repeating: 0, count: 512)
  let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
  if status != 0 {
    throw ImageError("\(what): \(String(cString: message))")
  }
}

/// Samples a C decoder in Sources/CImaging/cimaging.c allocated and handed back: `[H, W, C]`
/// interleaved, `depth` bits each (8, or 16 in native byte order); `free()` releases them.
private struct DecodedPixels {
  var width: Int32 = 0
  var height: Int32 = 0
  var channels: Int32 = 0
  var depth: Int32 = 8
  var pixels: UnsafeMutablePointer<UInt8>?

  /// Runs `decode` (a `ci_…_decode` call: the bytes, their count, the fields to fill, and the
  /// error buffer) on `data`; `codec` names it in errors.
  static func decode(
    _ data: Data, codec: String,
    _ decode: (UnsafePointer<UInt8>?, Int, inout DecodedPixels, UnsafeMutablePointer<CChar>, Int) -> Int32
  ) throws -> DecodedPixels {
    var decoded = DecodedPixels()
    try data.withUnsafeBytes { raw in
      try callCodec(codec) { decode(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &decoded, $0, $1) }
    }
    return decoded
  }

  func free() { Foundation.free(pixels) }

  /// The samples as an image `[C, H, W]` of float32 in [0, 1].
  func image() -> Tensor {
    let (h, w, c) = (Int(height), Int(width), Int(channels))
    let samples = h * w * c
    let interleaved: Tensor  // [H, W, C]
    if depth == 16 {
      let buffer = UnsafeRawBufferPointer(start: pixels, count: samples * 2)
      let values = buffer.bindMemory(to: UInt16.self).map { Float($0) / 65535 }
      interleaved = Tensor(values, shape: [h, w, c])
    } else {
      let buffer = UnsafeRawBufferPointer(start: pixels, count: samples)
      interleaved = Tensor(bytes: buffer, shape: [h, w, c], dtype: .uint8).to(.float32) / 255
    }
    return interleaved.permuted([2, 0, 1]).contiguous()
  }
}

/// PNG files, through libpng. Images are tensors `[C, H, W]` of float32 in [0, 1].
public enum PNG {
  /// Decodes PNG bytes: gray, gray+alpha, RGB or RGBA, 8 or 16 bit, keeping every channel.
  public static func decode(_ data: Data) throws -> Tensor {
    let decoded = try DecodedPixels.decode(data, codec: "PNG") { bytes, count, pixels, message, capacity in
      ci_png_decode(
        bytes, count, &pixels.width, &pixels.height, &pixels.channels, &pixels.depth, &pixels.pixels,
        message, capacity)
    }
    defer { decoded.free() }
    return decoded.image()
  }

  /// Encodes an image `[C, H, W]` (C = 1…4, values clamped to [0, 1]) at 8 or 16 bits per sample.
  public static func encode(_ image: Tensor, bitDepth: Int = 8) throws -> Data {
    let shape = image.shape
    guard shape.count == 3, (1...4).contains(shape[0]), bitDepth == 8 || bitDepth == 16 else {
      throw ImageError("PNG encoding needs an image [C, H, W] with 1 to 4 channels and 8 or 16 bits, got \(shape)")
    }
    let (c, h, w) = (shape[0], shape[1], shape[2])
    let interleaved = withNoGrad { image.detached().to(.float32).clamped(min: 0, max: 1).permuted([1, 2, 0]) }
    var output: UnsafeMutablePointer<UInt8>?
    var size = 0
    if bitDepth == 16 {
      let samples = (interleaved * 65535).round().scalars(as: Float.self).map { UInt16($0) }
      try samples.withUnsafeBytes { raw in
        try callCodec("PNG") {
          ci_png_encode(raw.bindMemory(to: UInt8.self).baseAddress, Int32(w), Int32(h), Int32(c), 16, &output, &size, $0, $1)
        }
      }
    } else {
      let samples = (interleaved * 255).round().to(.uint8).scalars(as: UInt8.self)
      try samples.withUnsafeBufferPointer { buffer in
        try callCodec("PNG") { ci_png_encode(buffer.baseAddress, Int32(w), Int32(h), Int32(c), 8, &output, &size, $0, $1) }
      }
    }
    defer { free(output) }
    return Data(bytes: output!, count: size)
  }

  /// Writes an image to `url` as PNG (atomically: a half-written file never replaces a good one).
  public static func write(_ image: Tensor, to url: URL, bitDepth: Int = 8) throws {
    try FileSystem.writeAtomically(try encode(image, bitDepth: bitDepth), to: url)
  }
}

/// JPEG files, through libjpeg-turbo.
public enum JPEG {
  /// Decodes JPEG bytes to `[1, H, W]` (grayscale files) or `[3, H, W]`, float32 in [0, 1].
  public static func decode(_ data: Data) throws -> Tensor {
    // libjpeg-turbo decodes 8 bits per sample, the depth `DecodedPixels` starts with.
    let decoded = try DecodedPixels.decode(data, codec: "JPEG") { bytes, count, pixels, message, capacity in
      ci_jpeg_decode(bytes, count, &pixels.width, &pixels.height, &pixels.channels, &pixels.pixels, message, capacity)
    }
    defer { decoded.free() }
    return decoded.image()
  }
}

/// Reads any supported image file, choosing the codec from the file's first bytes.
public enum ImageFile {
  /// The image at `url` as `[C, H, W]` float32 in [0, 1], with every channel the file has.
  public static func read(_ url: URL) throws -> Tensor {
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw ImageError("cannot read \(url.path): \(FileManager.default.fileExists(atPath: url.path) ? "permission denied or not a file" : "no such file")")
    }
    return try decode(data, name: url.path)
  }

  /// Decodes PNG or JPEG bytes (`name` says where they came from, in errors).
  public static func decode(_ data: Data, name: String) throws -> Tensor {
    do {
      if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try PNG.decode(data) }
      if data.starts(with: [0xFF, 0xD8]) { return try JPEG.decode(data) }
    } catch let error as ImageError {
      throw ImageError("\(name) is corrupt: \(error.message)")
    }
    throw ImageError("\(name) is neither PNG nor JPEG (its first bytes say otherwise)")
  }

  /// A decoded picture as a model of `channels` × `resolution`² takes it: `withChannels`, then
  /// `resizedAndCentreCropped`. Every path from a user's image file to a model goes through it.
  public static func modelInput(_ image: Tensor, channels: Int, resolution: Int) -> Tensor {
    resizedAndCentreCropped(withChannels(image, channels), to: resolution)
  }

  /// The image file at `url` as a model's input (`modelInput`).
  public static func readModelInput(_ url: URL, channels: Int, resolution: Int) throws -> Tensor {
    modelInput(try read(url), channels: channels, resolution: resolution)
  }

  /// Whether a file name has an extension Afterimage reads.
  public static func isSupported(_ url: URL) -> Bool {
    ["png", "jpg", "jpeg"].contains(url.pathExtension.lowercased())
  }

  /// An image with exactly `channels` channels (1 or 3): alpha dropped, gray expanded, or RGB
  /// turned to luma (ITU-R BT.601 weights, as PIL's "L" mode).
  public static func withChannels(_ image: Tensor, _ channels: Int) -> Tensor {
    let c = image.shape[0]
    let colour = c == 2 || c == 4 ? image.narrow(dim: 0, start: 0, length: c - 1) : image
    switch (colour.shape[0], channels) {
    case (1, 3): return colour.expanded([3, -1, -1]).contiguous()
    case (3, 1):
      let weights = Tensor([0.299, 0.587, 0.114] as [Float], shape: [3, 1, 1])
      return (colour * weights).sum(dim: 0, keepDim: true)
    default: return colour
    }
  }

  /// Resizes so the shorter side is `size` (antialiased bilinear) and crops the centre square.
  public static func resizedAndCentreCropped(_ image: Tensor, to size: Int) -> Tensor {
    let (h, w) = (image.shape[1], image.shape[2])
    var resized = image
    if min(h, w) != size {
      let scale = Double(size) / Double(min(h, w))
      let newH = max(size, Int((Double(h) * scale).rounded()))
      let newW = max(size, Int((Double(w) * scale).rounded()))
      resized = image.unsqueezed(0).resizedBilinear(to: (newH, newW)).squeezed(0).clamped(min: 0, max: 1)
    }
    let top = (resized.shape[1] - size) / 2
    let left = (resized.shape[2] - size) / 2
    return resized.narrow(dim: 1, start: top, length: size).narrow(dim: 2, start: left, length: size).contiguous()
  }
}
