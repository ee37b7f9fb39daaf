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

  /// Writes `data` so that `url` holds either its old contents or all of the new, never a part
  /// (a temporary file, fsync and rename: `Safetensors.writeAtomically`).
  public static func writeAtomically(_ data: Data, to url: URL) throws {
    do {
      try Safetensors.writeAtomically(data, to: url)
    } catch let error as TorchError {
      throw RunError(error.message)
    }
  }
}
