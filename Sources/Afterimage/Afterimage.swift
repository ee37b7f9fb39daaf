import Foundation
import Torch

/// The Afterimage domain library: data, classifiers, inversion, analysis and reports.
/// This file holds what the other parts share: the project's version and the environment probe.
public enum Afterimage {
  /// The toolkit's version.
  public static let version = "0.1.0"
}

/// A data set Afterimage can find on this machine.
public struct DatasetAvailability {
  /// The name used on the command line (`fashion-mnist`).
  public let name: String
  /// Where its files are, or nil for a procedural data set.
  public let location: String?
  /// The installed version (the Debian package's, for packaged data), when known.
  public let version: String?
  /// Whether every file it needs is present.
  public let isComplete: Bool
  /// What a user should do when it is not complete.
  public let note: String?
}

/// Reports facts about the machine that decide what Afterimage can run.
public enum Environment {
  /// Debian's Fashion-MNIST package location.
  public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"
  static let fashionMNISTFiles = [
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
  ]

  /// The version of an installed Debian package, read from dpkg's status file.
  public static func debianPackageVersion(_ package: String, statusFile: String = "/var/lib/dpkg/status")
    -> String?
  {
    guard let text = try? String(contentsOfFile: statusFile, encoding: .utf8) else { return nil }
    for stanza in text.components(separatedBy: "\n\n") {
      let lines = stanza.split(separator: "\n")
      guard lines.contains(where: { $0 == "Package: \(package)" }),
        lines.contains(where: { $0.hasPrefix("Status:") && $0.hasSuffix(" installed") })
      else { continue }
      return lines.first(where: { $0.hasPrefix("Version: ") }).map { String($0.dropFirst(9)) }
    }
    return nil
  }

  /// The data sets found on this machine.
  public static func datasets() -> [DatasetAvailability] {
    let fileManager = FileManager.default
    let missing = fashionMNISTFiles.filter {
      !fileManager.fileExists(atPath: "\(fashionMNISTDirectory)/\($0)")
    }
    let fashion = DatasetAvailability(
      name: "fashion-mnist", location: fashionMNISTDirectory,
      version: debianPackageVersion("dataset-fashion-mnist"), isComplete: missing.isEmpty,
      note: missing.isEmpty ? nil : "missing \(missing.joined(separator: ", ")): run scripts/setup (installs dataset-fashion-mnist)")
    return [fashion]
  }
}
