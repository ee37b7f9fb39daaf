import Foundation
import Torch

/// Named arrays written for other tools: `.safetensors` (the `safetensors` package, any
/// framework) or `.npz` (`numpy.load`), chosen by the file's extension.
public enum ArrayFiles {
  /// The formats, as `--arrays` names them.
  public enum Format: String, CaseIterable, Sendable {
    case safetensors, npz

    /// The file name of `base` in this format (`arrays.npz`).
    public func fileName(_ base: String) -> String { "\(base).\(rawValue)" }
  }

  /// Writes `arrays` (each contiguous on the CPU after conversion) to `url` atomically, in the
  /// format its extension names; `metadata` goes into a safetensors header (an .npz has none).
  public static func write(_ arrays: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL) throws {
    let cpu = arrays.map { (name: $0.name, tensor: $0.tensor.to(.cpu).contiguous()) }
    switch Format(rawValue: url.pathExtension) {
    case .safetensors:
      try FileSystem.writeAtomically(try Safetensors.encode(cpu, metadata: metadata), to: url)
    case .npz:
      try FileSystem.writeAtomically(try NumPy.npz(cpu), to: url)
    case nil:
      throw RunError("\(url.lastPathComponent): arrays are written as .safetensors or .npz")
    }
  }
}

/// NumPy's file formats: `.npy` (one array) and `.npz` (a zip archive of `.npy` files, stored
/// uncompressed, as `numpy.savez` writes them).
public enum NumPy {
  /// One array as an `.npy` file, format version 1.0: the magic `\x93NUMPY`, the version, the
  /// header's length (UInt16, little-endian), a Python dict literal padded with spaces to a
  /// multiple of 64 bytes and ended by a newline, then the raw little-endian C-order data.
  public static func npy(_ tensor: Tensor) throws -> Data {
    let shape = tensor.shape.map(String.init)
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(\(shape.joined(separator: ", ")))"
    var header = "{'descr': '\(try descriptor(tensor.dtype))', 'fortran_order': False, 'shape': \(shapeText), }"
    let unpadded = 10 + header.utf8.count + 1
    header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
    let length = UInt16(header.utf8.count)
    data += Data([UInt8(length & 0xFF), UInt8(length >> 8)])
    data += Data(header.utf8)
    data += Data(tensor.contiguous().rawBytes())
    return data
  }

  /// NumPy's type string of `dtype` (little-endian).
  static func descriptor(_ dtype: DType) throws -> String {
    switch dtype {
    case .float32: return "<f4"
    case .float64: return "<f8"
    case .float16: return "<f2"
    case .int64: return "<i8"
    case .int32: return "<i4"
    case .uint8: return "|u1"
    case .bool: return "|b1"
    case .bfloat16: throw RunError("NumPy has no bfloat16: convert the array to float32 first")
    }
  }

  /// Arrays as an `.npz`: each `NAME.npy` stored in a zip archive.
  public static func npz(_ arrays: [(name: String, tensor: Tensor)]) throws -> Data {
    try ZipArchive.stored(arrays.map { (name: $0.name + ".npy", data: try npy($0.tensor)) })
  }
}

/// A zip archive whose members are stored, not compressed (PKWARE's APPNOTE: a local header
/// and the data per member, then the central directory and its end record). Members and the
/// archive stay under 4 GiB, the limit of a zip without the Zip64 extension.
enum ZipArchive {
  static func stored(_ members: [(name: String, data: Data)]) throws -> Data {
    var archive = Data()
    var directory = Data()
    for member in members {
      let name = Data(member.name.utf8)
      guard member.data.count < Int(UInt32.max), archive.count + member.data.count < Int(UInt32.max) else {
        throw RunError("\(member.name) makes the archive larger than 4 GiB: write fewer images, or use .safetensors")
      }
      let crc = CRC32.checksum(member.data)
      let offset = UInt32(archive.count)
      // Version 2.0, no flags, stored (method 0), the DOS time and date of 1980-01-01 00:00.
      let common: [UInt16] = [20, 0, 0, 0, 0x21]
      archive += le(UInt32(0x0403_4B50)) + le(common) + le(crc) + le(UInt32(member.data.count)) + le(UInt32(member.data.count))
        + le([UInt16(name.count), 0]) + name + member.data
      directory += le(UInt32(0x0201_4B50)) + le(UInt16(20)) + le(common) + le(crc) + le(UInt32(member.data.count))
        + le(UInt32(member.data.count)) + le([UInt16(name.count), 0, 0, 0, 0]) + le(UInt32(0)) + le(offset) + name
    }
    let end = le(UInt32(0x0605_4B50)) + le([0, 0, UInt16(members.count), UInt16(members.count)])
      + le(UInt32(directory.count)) + le(UInt32(archive.count)) + le(UInt16(0))
    return archive + directory + end
  }

  static func le(_ value: UInt32) -> Data { Data([0, 8, 16, 24].map { UInt8((value >> UInt32($0)) & 0xFF) }) }
  static func le(_ value: UInt16) -> Data { Data([UInt8(value & 0xFF), UInt8(value >> 8)]) }
  static func le(_ values: [UInt16]) -> Data { values.reduce(into: Data()) { $0 += le($1) } }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip archives use it.
enum CRC32 {
  static let table: [UInt32] = (0..<256).map { byte in
    (0..<8).reduce(UInt32(byte)) { crc, _ in crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
  }

  static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    ~bytes.reduce(~UInt32(0)) { crc, byte in table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
  }
}
