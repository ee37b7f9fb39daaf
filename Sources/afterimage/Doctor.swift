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
    let build = Torch.buildInfo
    print("libtorch    \(Torch.version) from \(Torch.libraryFolder ?? "an unknown folder")")
    print("threads     \(Torch.threadCount) (of \(ProcessInfo.processInfo.activeProcessorCount) cores; AFTERIMAGE_THREADS overrides)")
    if let blas = Torch.loadedBLAS {
      let limited = Torch.blasLimitedToOneThread ? ", limited to 1 thread" : ""
      print("BLAS        \(blas)\(limited)")
    } else {
      print("BLAS        \(build.blas ?? "not stated") (inside libtorch)")
    }
    print("oneDNN      \(build.oneDNN ?? "not built in")")
    print("CPU kernels \(build.cpuCapability ?? "not stated")")
    print("oneDNN ISA  \(oneDNNInstructionSet())")
    let workaround = Workarounds.stridedPointwiseConvolution
      ? "active: strided 1×1 convolutions with under \(Workarounds.stridedPointwiseChannelLimit) input channels run as a slice and a stride-1 convolution"
      : "not needed with \(InstructionSet.oneDNNDispatches) kernels (only oneDNN's AVX2 kernels have the bug)"
    print("workaround  oneDNN bug 6035: \(workaround)")
    var cuda = build.cuda.map { "built for CUDA \($0)" } ?? "not built in (a CPU-only libtorch)"
    if build.cuda != nil {
      cuda += Torch.cudaIsAvailable ? ", \(Torch.cudaDeviceCount) device(s) visible" : ", but no GPU is visible"
      if let cuDNN = build.cuDNN { cuda += "; cuDNN \(cuDNN)" }
    }
    print("CUDA        \(cuda)")
    print("devices     --device auto picks \(Torch.cudaIsAvailable ? "cuda:0" : "cpu")")
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

  /// The instruction set oneDNN's convolutions run on here, and why when it is not the CPU's.
  private func oneDNNInstructionSet() -> String {
    let dispatched = InstructionSet.oneDNNDispatches
    var line = "\(dispatched) (this CPU: \(InstructionSet.ofThisCPU)"
    if let cap = InstructionSet.oneDNNCap() {
      line += cap.tier == nil ? "; \(cap.variable)=\(cap.value) caps nothing" : "; capped by \(cap.variable)=\(cap.value)"
    }
    return line + ")"
  }
}
