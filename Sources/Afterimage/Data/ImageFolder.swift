import Foundation
import Torch

/// An ImageNet-style folder: one sub-folder per class holding PNG or JPEG files. Images are
/// decoded once, resized (shorter side) and centre-cropped to the requested resolution.
///
/// Splits: when the folder has `train/` and `test/` (or `val/`) sub-folders, each is a split
/// laid out by class; otherwise every tenth file of each class (by sorted name) is held out.
public enum ImageFolder {
  /// What loading found besides the images: files that could not be decoded.
  public struct Report {
    public let skipped: [(path: String, reason: String)]

    /// A one-paragraph summary for the terminal, or nil when nothing was skipped.
    public var summary: String? {
      guard !skipped.isEmpty else { return nil }
      let shown = skipped.prefix(3).map { "\($0.path) (\($0.reason))" }.joined(separator: "; ")
      return "skipped \(skipped.count) unreadable file(s): \(shown)\(skipped.count > 3 ? "; …" : "") (use --strict to stop instead)"
    }
  }

  /// Loads a split of the folder at `path`.
  /// - Parameter strict: fail on the first unreadable file instead of skipping it.
  public static func load(path: String, split: Split, resolution: Int, strict: Bool = false) throws
    -> (dataset: InMemoryDataset, report: Report)
  {
    let root = URL(fileURLWithPath: path)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw DatasetError("folder:\(path): no such folder")
    }
    let splitFolder = ["train": ["train"], "test": ["test", "val"]][split.rawValue]!
      .map { root.appendingPathComponent($0) }
      .first { FileManager.default.fileExists(atPath: $0.path) }
    let classRoot = splitFolder ?? root
    let classFolders = try subfolders(of: classRoot)
    guard !classFolders.isEmpty else {
      let loose = try files(in: classRoot).count
      throw DatasetError(
        "folder:\(classRoot.path) has no class sub-folders"
          + (loose > 0 ? " (it holds \(loose) image files directly)" : "")
          + ": put each class's images in a sub-folder named after the class, e.g. \(classRoot.path)/cat/001.png")
    }
    var images: [Tensor] = []
    var labels: [Int64] = []
    var skipped: [(path: String, reason: String)] = []
    for (label, folder) in classFolders.enumerated() {
      var members = try files(in: folder)
      if splitFolder == nil {
        // No explicit split: hold out every tenth file (sorted by name) for testing.
        members = members.enumerated().filter { ($0.offset % 10 == 9) == (split == .test) }.map(\.element)
      }
      for file in members {
        do {
          let image = try ImageFile.read(file)
          images.append(ImageFile.resizedAndCentreCropped(image, to: resolution))
          labels.append(Int64(label))
        } catch {
          if strict { throw DatasetError("folder:\(path): \(error) (without --strict, unreadable files are skipped)") }
          skipped.append((file.path, "\(error)".components(separatedBy: ": ").dropFirst().joined(separator: ": ")))
        }
      }
    }
    guard !images.isEmpty else {
      throw DatasetError("folder:\(classRoot.path) has no readable PNG or JPEG images for the \(split) split")
    }
    // Colour unless every image is gray; alpha is dropped.
    let colour = images.contains { $0.shape[0] >= 3 }
    let channels = colour ? 3 : 1
    let pixels = Tensor.stack(images.map { ImageFile.withChannels($0, channels) })
    let bytes = (pixels * 255).round().clamped(min: 0, max: 255).to(.uint8)
    let dataset = InMemoryDataset(
      name: "folder:\(root.lastPathComponent)", classNames: classFolders.map(\.lastPathComponent), pixels: bytes,
      labels: labels)
    return (dataset, Report(skipped: skipped))
  }

  private static func subfolders(of url: URL) throws -> [URL] {
    let entries = try FileManager.default.contentsOfDirectory(
      at: url, includingPropertiesForKeys: [.isDirectoryKey], options: [.skipsHiddenFiles])
    return entries.filter { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
      .sorted { $0.lastPathComponent < $1.lastPathComponent }
  }

  private static func files(in url: URL) throws -> [URL] {
    try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
      .filter(ImageFile.isSupported).sorted { $0.lastPathComponent < $1.lastPathComponent }
  }
}
