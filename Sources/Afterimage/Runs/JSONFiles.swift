import Foundation
import Torch

/// Reading and writing the project's JSON files, with errors that name the file and the field.
public enum JSONFiles {
  /// Pretty, key-sorted JSON, written atomically.
  public static func write<T: Encodable>(_ value: T, to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try FileSystem.writeAtomically(try encoder.encode(value) + Data("\n".utf8), to: url)
  }

  /// One line of key-sorted JSON (safetensors metadata, cache keys).
  public static func line<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  public static func data(at url: URL) throws -> Data {
    guard let data = try? Data(contentsOf: url) else {
      throw RunError("cannot read \(url.path): \(FileManager.default.fileExists(atPath: url.path) ? "permission denied" : "no such file")")
    }
    return data
  }

  public static func read<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
    let data = try data(at: url)
    return try decoding(url) { try JSONDecoder().decode(type, from: data) }
  }

  /// Runs `decode`, turning a `DecodingError` into a message naming `url` and the field.
  public static func decoding<T>(_ url: URL, _ decode: () throws -> T) throws -> T {
    do {
      return try decode()
    } catch let error as DecodingError {
      throw RunError("\(url.path): \(describe(error))")
    }
  }

  /// `DecodingError` in words: which field, and what is wrong with it.
  public static func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
      keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
    switch error {
    case .keyNotFound(let key, let context):
      return "the field '\(path(context.codingPath + [key]))' is missing"
    case .valueNotFound(let type, let context):
      return "the field '\(path(context.codingPath))' is null, expected \(type)"
    case .typeMismatch(let type, let context):
      return "the field '\(path(context.codingPath))' is not \(type)"
    case .dataCorrupted(let context):
      return context.codingPath.isEmpty ? "not valid JSON (\(context.debugDescription))" : "the field '\(path(context.codingPath))' is invalid: \(context.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }
}
