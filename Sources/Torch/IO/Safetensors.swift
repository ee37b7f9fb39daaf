import Foundation

/// The safetensors format, written from its specification:
///
///     [8 bytes: N, little-endian u64] [N bytes: JSON header] [data]
///
/// The header maps each tensor name to `{"dtype": "F32", "shape": [..], "data_offsets": [b, e]}`
/// with offsets relative to the start of the data; an optional `"__metadata__"` maps strings to
/// strings. Loading never executes code, unlike pickle checkpoints.
public enum Safetensors {
  /// A file's tensors (in header order) and its string metadata.
  public struct File {
    public var tensors: [(name: String, tensor: Tensor)]
    public var metadata: [String: String]

    /// The tensors keyed by name.
    public var dictionary: [String: Tensor] {
      Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    }

    /// The tensors whose names start with `prefix`, keyed by the rest of the name (one part of
    /// a checkpoint that holds several models: `section("G.")`).
    public func section(_ prefix: String) -> [String: Tensor] {
      Dictionary(
        tensors.filter { $0.name.hasPrefix(prefix) }.map { (String($0.name.dropFirst(prefix.count)), $0.tensor) },
        uniquingKeysWith: { first, _ in first })
    }

    /// The tensor named `name`, or an error naming the file's contents.
    public func tensor(_ name: String) throws -> Tensor {
      guard let found = tensors.first(where: { $0.name == name }) else {
        throw TorchError("no tensor named '\(name)' (the file has \(tensors.count) tensors)")
      }
      return found.tensor
    }
  }

  // The specification caps the header at 100 MB to refuse absurd allocations.
  static let maximumHeaderSize: UInt64 = 100_000_000

  // MARK: writing

  /// The file's bytes for `tensors` (names must be unique) with optional `metadata`.
  public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:])
    throws -> Data
  {
    var seen = Set<String>()
    var entries: [String] = []
    var payload: [[UInt8]] = []
    var offset = 0
    if !metadata.isEmpty {
      let pairs = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
      entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    for (name, tensor) in tensors {
      guard seen.insert(name).inserted else { throw TorchError("duplicate tensor name '\(name)'") }
      guard name != "__metadata__" else { throw TorchError("'__metadata__' is reserved") }
      let bytes = withNoGrad { tensor.rawBytes() }
      let shape = tensor.shape.map(String.init).joined(separator: ",")
      entries.append(
        "\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.safetensorsName)\",\"shape\":[\(shape)],"
          + "\"data_offsets\":[\(offset),\(offset + bytes.count)]}")
      payload.append(bytes)
      offset += bytes.count
    }
    var header = Array("{\(entries.joined(separator: ","))}".utf8)
    // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
    while header.count % 8 != 0 { header.append(0x20) }
    var data = Data(capacity: 8 + header.count + offset)
    var size = UInt64(header.count).littleEndian
    withUnsafeBytes(of: &size) { data.append(contentsOf: $0) }
    data.append(contentsOf: header)
    for bytes in payload { data.append(contentsOf: bytes) }
    return data
  }

  /// Writes `tensors` to `url` atomically: a temporary file beside it, flushed to disk, then
  /// renamed over the destination, so a crash never leaves a half-written file.
  public static func write(
    _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL
  ) throws {
    let data = try encode(tensors, metadata: metadata)
    try writeAtomically(data, to: url)
  }

  /// Writes `data` to `url` through a temporary file, fsync and rename, so `url` always holds
  /// either its old contents or all of the new. Temporary files that killed writers left beside
  /// `url` (`.NAME.PID.tmp` of a process that is gone) are removed first. Errors name the path
  /// and the cause in plain words (no space left on device, permission denied).
  public static func writeAtomically(_ data: Data, to url: URL) throws {
    let directory = url.deletingLastPathComponent()
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw TorchError("cannot create the folder \(directory.path): \(FileErrors.describe(error))")
    }
    removeStaleTemporaries(of: url)
    let temporary = temporaryURL(of: url, pid: getpid())
    guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
      throw TorchError("cannot create \(temporary.path): \(String(cString: strerror(errno))) (check that the folder is writable)")
    }
    do {
      let handle = try FileHandle(forWritingTo: temporary)
      defer { try? handle.close() }
      try handle.write(contentsOf: data)
      try handle.synchronize()
      if rename(temporary.path, url.path) != 0 {
        throw TorchError("cannot rename \(temporary.path) to \(url.path): \(String(cString: strerror(errno)))")
      }
    } catch let error as TorchError {
      try? FileManager.default.removeItem(at: temporary)
      throw error
    } catch {
      try? FileManager.default.removeItem(at: temporary)
      throw TorchError("cannot write \(url.path): \(FileErrors.describe(error)); its previous contents are kept")
    }
  }

  /// `.NAME.PID.tmp` beside `url`: where process `pid` writes `url` before renaming.
  static func temporaryURL(of url: URL, pid: Int32) -> URL {
    url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(pid).tmp")
  }

  /// Removes the temporary files of `url` whose writing process no longer exists.
  static func removeStaleTemporaries(of url: URL) {
    let folder = url.deletingLastPathComponent()
    let prefix = ".\(url.lastPathComponent)."
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
    for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
      guard let pid = Int32(name.dropFirst(prefix.count).dropLast(4)), pid != getpid() else { continue }
      if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(at: folder.appendingPathComponent(name)) }
    }
  }

  // MARK: reading

  /// Reads and validates the file at `url`.
  public static func read(_ url: URL) throws -> File {
    let data: Data
    do {
      data = try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
      throw TorchError("cannot read \(url.path): \(describeReadFailure(url))")
    }
    do {
      return try decode(data)
    } catch let error as TorchError {
      throw TorchError("\(url.path) is not a valid safetensors file: \(error.message)")
    }
  }

  /// Parses and validates a safetensors file held in memory.
  public static func decode(_ data: Data) throws -> File {
    guard data.count >= 8 else {
      throw TorchError("it has \(data.count) bytes, fewer than the 8-byte header size (truncated?)")
    }
    let headerSize = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard headerSize <= maximumHeaderSize else {
      throw TorchError("its header claims \(headerSize) bytes, over the 100 MB limit (not a safetensors file?)")
    }
    guard 8 + headerSize <= UInt64(data.count) else {
      throw TorchError(
        "its header claims \(headerSize) bytes but only \(data.count - 8) follow (truncated file)")
    }
    let headerBytes = data.subdata(in: 8..<(8 + Int(headerSize)))
    guard let json = try? JSONSerialization.jsonObject(with: headerBytes),
      let header = json as? [String: Any]
    else {
      throw TorchError("its header is not a JSON object")
    }
    let dataStart = 8 + Int(headerSize)
    let dataLength = data.count - dataStart

    var metadata: [String: String] = [:]
    if let rawMetadata = header["__metadata__"] {
      guard let dictionary = rawMetadata as? [String: Any] else {
        throw TorchError("'__metadata__' is not an object of strings")
      }
      for (key, value) in dictionary {
        guard let text = value as? String else {
          throw TorchError("metadata entry '\(key)' is not a string")
        }
        metadata[key] = text
      }
    }

    struct Entry {
      let name: String
      let dtype: DType
      let shape: [Int]
      let begin: Int
      let end: Int
    }
    var entries: [Entry] = []
    for (name, value) in header where name != "__metadata__" {
      guard let info = value as? [String: Any] else { throw TorchError("entry '\(name)' is not an object") }
      guard let dtypeName = info["dtype"] as? String else {
        throw TorchError("entry '\(name)' has no dtype")
      }
      guard let dtype = DType(safetensorsName: dtypeName) else {
        throw TorchError("entry '\(name)' has dtype \(dtypeName), which Afterimage does not read")
      }
      guard let shapeValues = info["shape"] as? [Any], let shape = integers(shapeValues),
        shape.allSatisfy({ $0 >= 0 })
      else {
        throw TorchError("entry '\(name)' has no valid shape")
      }
      guard let offsetValues = info["data_offsets"] as? [Any], let offsets = integers(offsetValues),
        offsets.count == 2
      else {
        throw TorchError("entry '\(name)' has no valid data_offsets")
      }
      let (begin, end) = (offsets[0], offsets[1])
      var expected = dtype.byteCount
      for dimension in shape {
        let (product, overflow) = expected.multipliedReportingOverflow(by: dimension)
        guard !overflow else { throw TorchError("entry '\(name)' has an impossible shape \(shape)") }
        expected = product
      }
      guard begin >= 0, end >= begin, end - begin == expected else {
        throw TorchError(
          "entry '\(name)' (\(dtypeName) \(shape)) needs \(expected) bytes but its data_offsets [\(begin), \(end)] span \(end - begin)")
      }
      guard end <= dataLength else {
        throw TorchError(
          "entry '\(name)' ends at byte \(end) of the data but the file holds only \(dataLength) (truncated file?)")
      }
      entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
    }
    // The data of different tensors may not overlap.
    let byOffset = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
    for (previous, next) in zip(byOffset, byOffset.dropFirst()) where next.begin < previous.end {
      throw TorchError("entries '\(previous.name)' and '\(next.name)' overlap in the data")
    }

    Torch.ensureInitialised()
    let tensors: [(name: String, tensor: Tensor)] = data.withUnsafeBytes { raw in
      byOffset.map { entry in
        let slice = UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.begin)..<(dataStart + entry.end)])
        return (entry.name, Tensor(bytes: slice, shape: entry.shape, dtype: entry.dtype))
      }
    }
    return File(tensors: tensors, metadata: metadata)
  }

  private static func integers(_ values: [Any]) -> [Int]? {
    var result: [Int] = []
    for value in values {
      guard let number = value as? NSNumber, number.doubleValue == Double(number.intValue) else {
        return nil
      }
      result.append(number.intValue)
    }
    return result
  }

  private static func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          out += String(format: "\\u%04x", scalar.value)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }
}

/// Why a file could not be read, in words a user can act on.
func describeReadFailure(_ url: URL) -> String {
  var isDirectory: ObjCBool = false
  if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
    return "no such file"
  }
  if isDirectory.boolValue { return "it is a folder, not a file" }
  if !FileManager.default.isReadableFile(atPath: url.path) { return "permission denied" }
  return "the file could not be opened"
}

/// File-system errors in plain words.
public enum FileErrors {
  /// The cause of `error`: the POSIX reason when Foundation wraps one ("No space left on
  /// device", "Permission denied"), never a raw `NSError` dump.
  public static func describe(_ error: Error) -> String {
    let error = error as NSError
    if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
    switch error.code {
    case NSFileWriteOutOfSpaceError: return String(cString: strerror(ENOSPC))
    case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return String(cString: strerror(EACCES))
    case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return String(cString: strerror(ENOENT))
    case NSFileWriteVolumeReadOnlyError: return String(cString: strerror(EROFS))
    case NSFileWriteFileExistsError: return "a file is in the way"
    default: return error.localizedDescription
    }
  }
}
