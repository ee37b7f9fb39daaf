import ArgumentParser
import Torch

/// `--device`, taken by every command that computes.
struct DeviceOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Where to compute: cpu, cuda, cuda:N, or auto (the first GPU when this libtorch has CUDA and one is visible, else cpu).",
    valueName: "device"))
  var device = "auto"

  /// The device named, checked against this build and machine.
  func resolved() throws -> Device {
    do {
      return try Device.resolve(device)
    } catch let error as TorchError {
      throw ValidationError("--device \(device): \(error.message)")
    }
  }
}

/// The help of `--precision`, which both trainers take (`InverterRecipeOptions`,
/// `ClassifierRecipeOptions`), each defaulting to its options' `forwardPrecision`.
func precisionHelp(default value: Precision) -> ArgumentHelp {
  ArgumentHelp(
    withDefault("Forward passes in float32, or bf16 autocast (mixed precision: for CUDA; slow on most CPUs).", value).abstract,
    valueName: "float32|bf16")
}
