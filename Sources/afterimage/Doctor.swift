import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage doctor`: what this machine offers Afterimage.
struct Doctor: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the libtorch version, threads, BLAS, CUDA and the data sets found.")

  func run() throws {
    Torch.ensureInitialised()
    print("afterimage \(Afterimage.version)")
    print("libtorch    \(Torch.version)")
    print("threads     \(Torch.threadCount) (of \(ProcessInfo.processInfo.activeProcessorCount) cores; AFTERIMAGE_THREADS overrides)")
    let blas = Torch.loadedBLAS ?? "none mapped"
    let limited = Torch.blasLimitedToOneThread ? ", limited to 1 thread" : ""
    print("BLAS        \(blas)\(limited)")
    if blas.contains("libblas.so") && !blas.contains("openblas") {
      print("            warning: the reference BLAS is slow; install libopenblas-dev (scripts/setup does)")
    }
    let cuda = Torch.cudaIsAvailable ? "available, \(Torch.cudaDeviceCount) device(s)" : "not available"
    print("CUDA        \(cuda)")
    print("data sets")
    print("  shapes          built in: procedural, \(ShapesDataset.maximumClassCount) glyph classes available, nothing to download")
    for dataset in Environment.datasets() {
      let state = dataset.isComplete ? "found" : "incomplete"
      let version = dataset.version.map { ", version \($0)" } ?? ""
      print("  \(dataset.name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(state) at \(dataset.location ?? "-")\(version)")
      if let note = dataset.note { print("                  \(note)") }
    }
    print("  cifar10:PATH, cifar100:PATH   the binary format, from a folder you name")
    print("  folder:PATH     one sub-folder of PNG/JPEG images per class")
  }
}
