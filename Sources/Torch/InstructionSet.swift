import CTorch
import Foundation

/// An x86 instruction-set tier, as oneDNN (libtorch's CPU convolution library) picks its kernels
/// by: it looks at the CPU when a process starts and runs the kernels of the highest tier the
/// CPU has, capped by `ONEDNN_MAX_CPU_ISA`. The same program therefore runs different
/// convolution code on different machines, and a bug in one tier's kernels shows only there.
public enum InstructionSet: Int, Comparable, Sendable, CustomStringConvertible {
  /// Below SSE4.1, or not an x86 CPU: oneDNN's reference and non-x86 kernels.
  case baseline = 0
  case sse41, avx, avx2
  /// AVX-512 with BW, VL and DQ (oneDNN's `avx512_core` and its extensions).
  case avx512
  /// AVX-512 with Intel AMX tiles.
  case amx

  public static func < (a: InstructionSet, b: InstructionSet) -> Bool { a.rawValue < b.rawValue }

  public var description: String {
    switch self {
    case .baseline: return "baseline (no SSE4.1, or not x86)"
    case .sse41: return "SSE4.1"
    case .avx: return "AVX"
    case .avx2: return "AVX2"
    case .avx512: return "AVX-512"
    case .amx: return "AMX"
    }
  }

  /// The tier a `ONEDNN_MAX_CPU_ISA` value names (oneDNN's names, any case: `AVX2`,
  /// `AVX2_VNNI`, `AVX512_CORE_BF16`, `AVX10_1_512_AMX`, …); nil for `DEFAULT`, which caps
  /// nothing, and for a name oneDNN does not know, which it ignores.
  public init?(oneDNNName: String) {
    let name = oneDNNName.trimmingCharacters(in: .whitespaces).uppercased()
    if name.contains("AMX") {
      self = .amx
    } else if name.hasPrefix("AVX512") || name.hasPrefix("AVX10") {
      self = .avx512
    } else if name.hasPrefix("AVX2") {
      self = .avx2
    } else if name == "AVX" {
      self = .avx
    } else if name == "SSE41" {
      self = .sse41
    } else {
      return nil
    }
  }

  /// The highest tier this CPU and its operating system support.
  public static let ofThisCPU: InstructionSet = {
    let sets = ct_cpu_instruction_sets()
    // Bits from ct_cpu_instruction_sets: 1 SSE4.1, 2 AVX, 4 AVX2, 8 AVX-512, 16 AMX.
    let tiers: [(bit: Int32, tier: InstructionSet)] = [(16, .amx), (8, .avx512), (4, .avx2), (2, .avx), (1, .sse41)]
    for (bit, tier) in tiers where sets & bit != 0 {
      return tier
    }
    return .baseline
  }()

  /// The cap the environment sets, as oneDNN reads it: `ONEDNN_MAX_CPU_ISA`, else the older
  /// `DNNL_MAX_CPU_ISA`. The variable's name and value, and the tier (nil when it caps nothing).
  public static func oneDNNCap(in environment: [String: String] = ProcessInfo.processInfo.environment)
    -> (variable: String, value: String, tier: InstructionSet?)?
  {
    for variable in ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"] {
      if let value = environment[variable], !value.isEmpty {
        return (variable, value, InstructionSet(oneDNNName: value))
      }
    }
    return nil
  }

  /// The tier oneDNN dispatches to in this process: this CPU's, capped by the environment.
  public static let oneDNNDispatches: InstructionSet = {
    guard let cap = oneDNNCap()?.tier else { return ofThisCPU }
    return min(ofThisCPU, cap)
  }()
}

/// Work-arounds for bugs in the libtorch that Afterimage runs on, each active only where the bug is.
public enum Workarounds {
  /// oneDNN bug 6035 (open upstream; oneDNN 3.12 in PyTorch 2.13): the AVX2 1×1 convolution's
  /// weight gradient, for a stride above 1 in channels-last with fewer than 8 input channels
  /// per group (less than its 8-channel block), writes past the workspace it copies the strided
  /// input into. Measured through PyTorch 2.13 with the AVX2 kernels: a segfault with one
  /// thread, a hang or weight gradients wrong by 50–130% with two. A ResNet's downsample
  /// shortcut at width 0.25 (4 channels) is such a convolution. Neither the SSE4.1/AVX tiers
  /// (a GEMM kernel) nor AVX-512 (a 16-channel block that handles the remainder) are affected.
  ///
  /// The workaround, in `Tensor.conv2d`: such a convolution becomes a strided slice of the input
  /// followed by the same 1×1 convolution at stride 1. Both compute out[n, o, i, j] =
  /// Σ_c w[o, c]·x[n, c, s·i, s·j] + b[o]: the same products and sums, without the kernel's
  /// strided copy. It costs one copy of a small input, and only for these narrow layers.
  ///
  /// True where oneDNN dispatches to the AVX2 tier; tests set it to run the rewritten path on
  /// any machine.
  nonisolated(unsafe) public static var stridedPointwiseConvolution: Bool =
    InstructionSet.oneDNNDispatches == .avx2

  /// The input channels per group below which oneDNN's AVX2 1×1 kernel is wrong: its block size.
  public static let stridedPointwiseChannelLimit = 8
}
