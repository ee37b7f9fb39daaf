import Afterimage
import ArgumentParser
import Foundation
import Torch

// The library's enumerations as option values, each spelled as its raw value.
extension InverterConfig.Architecture: ExpressibleByArgument {}
extension InverterPreset: ExpressibleByArgument {}
extension LogitPreprocessing: ExpressibleByArgument {}
extension SeedInput: ExpressibleByArgument {}
extension ClassifierArchitecture: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension Split: ExpressibleByArgument {}

/// Parses the value of `option` as one of `cases` (by raw value); anything else is refused with
/// a message that names them all: "--arch must be biggan or upconv, not 'gan'".
func choice<T: RawRepresentable & Sendable>(of option: String, among cases: [T]) -> @Sendable (String) throws -> T where T.RawValue == String {
  { text in
    guard let value = cases.first(where: { $0.rawValue == text }) else {
      let names = cases.map(\.rawValue)
      let list = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
      throw ValidationError("\(option) must be \(list), not '\(text)'")
    }
    return value
  }
}

/// `choice(of:among:)` over every case of `T`.
func choice<T: RawRepresentable & CaseIterable & Sendable>(of option: String) -> @Sendable (String) throws -> T where T.RawValue == String {
  choice(of: option, among: Array(T.allCases))
}

/// `help` ending in "(default: VALUE)", as ArgumentParser ends the help of the options it parses
/// itself (it leaves the default out for options parsed by a `transform`, such as `choice`'s).
func withDefault<T: RawRepresentable>(_ help: String, _ value: T) -> ArgumentHelp where T.RawValue == String {
  ArgumentHelp("\(help) (default: \(value.rawValue))")
}

/// Runs `body`, turning a `RunError` (a library refusal of what the user asked for) into a
/// usage error, as if the options themselves had been refused.
func validating<T>(_ body: () throws -> T) throws -> T {
  do {
    return try body()
  } catch let error as RunError {
    throw ValidationError(error.message)
  }
}

/// Writes `value` as JSON to `path` when the user gave one (`--json FILE`), and says so.
func writeJSON<T: Encodable>(_ value: T, ifAsked path: String?) throws {
  guard let path else { return }
  try JSONFiles.write(value, to: URL(fileURLWithPath: path))
  print("wrote \(path)")
}
