import Foundation
import Torch

/// File operations whose errors name the path and the cause in plain words.
public enum FileSystem {
  /// Removes `url` (a file or a folder) if it is there.
  public static func remove(_ url: URL) throws {
    guard FileManager.default.fileExists(atPath: url.path) else { return }
    do {
      try FileManager.default.removeItem(at: url)
    } catch {
      throw RunError("cannot remove \(url.path): \(FileErrors.describe(error))")
    }
  }
}
