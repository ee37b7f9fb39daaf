import Foundation

/// A file a run directory keeps and a later build reads back: config.json (`InverterConfig`,
/// `ClassifierConfig`) and results.json (`ClassifierTrainingResults`, `InverterTrainingResults`).
///
/// Each such file carries `schemaVersion`; a file without one was written before versions
/// existed and is version 1. Decoding is tolerant: a field that an older file lacks takes its
/// default, the same value a fresh record (and the command-line flag that sets it) starts from,
/// so a file written before a field existed reads as if the field had been left at its default.
/// A file of a newer schema than this build knows is refused with a message saying so.
///
/// The nested parts of a file (training options, loss weights, attacks) are versioned by the
/// file that holds them and decode just as tolerantly.
public protocol VersionedRecord: Codable {
  /// The schema this build writes. Adding a field with a default needs no new version (older
  /// files still decode); changing what a stored field means does.
  static var currentSchemaVersion: Int { get }
}

/// The version of a record written before `schemaVersion` existed.
let unversionedSchema = 1

extension KeyedDecodingContainer {
  /// Replaces `value` (a field's default) by the value stored under `key`, when the file has one.
  func decodeIfPresent<T: Decodable>(_ key: Key, into value: inout T) throws {
    if let stored = try decodeIfPresent(T.self, forKey: key) { value = stored }
  }

  /// Reads `schemaVersion` under `key` (1 when absent) and refuses one newer than `R` knows.
  func checkSchemaVersion<R: VersionedRecord>(_ key: Key, of record: R.Type) throws {
    let version = try decodeIfPresent(Int.self, forKey: key) ?? unversionedSchema
    guard version <= R.currentSchemaVersion else {
      throw DecodingError.dataCorruptedError(
        forKey: key, in: self,
        debugDescription: "written by a newer Afterimage (\(R.self) schema \(version); this build reads up to \(R.currentSchemaVersion))")
    }
  }
}
