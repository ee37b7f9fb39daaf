import CTorch
import Foundation

extension Torch {
  /// Runs `body` under libtorch's profiler and returns every operator call (`aten::…`) it made,
  /// with its inputs' sizes and scalar arguments, as a JSON array of
  /// `{"name", "shapes", "concrete"}`. The benchmark counts a step's FLOPs from it the way
  /// PyTorch's FlopCounterMode counts them (benchmarks/flops.py), for ours and the peers alike.
  public static func recordOperations(_ body: () throws -> Void) throws -> String {
    ensureInitialised()
    ct_clear_error()
    guard ct_profile_begin() == 0 else { throw takeShimError("starting libtorch's profiler") }
    var failure: Error?
    do { try body() } catch { failure = error }
    guard let text = ct_profile_end() else { throw takeShimError("stopping libtorch's profiler") }
    defer { ct_free_string(text) }
    if let failure { throw failure }
    return String(cString: text)
  }
}
