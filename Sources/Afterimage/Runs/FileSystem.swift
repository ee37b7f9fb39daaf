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

  /// Appends `data` to the end of `url`, creating it when it is not there (metrics.jsonl, the
  /// TensorBoard log); errors name the path and the cause.
  public static func append(_ data: Data, to url: URL) throws {
    do {
      if let handle = try? FileHandle(forWritingTo: url) {
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: data)
      } else {
        try data.write(to: url)
      }
    } catch {
      throw RunError("cannot write \(url.path): \(FileErrors.describe(error))")
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
