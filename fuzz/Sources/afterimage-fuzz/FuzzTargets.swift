import Afterimage
import Foundation
import Torch

/// One fuzz target: a reader of bytes a user (or an attacker) can hand Afterimage. A reader may
/// throw on bad input, which is the point; it must never crash, hang, or touch memory it does
/// not own (AddressSanitizer watches). `AFTERIMAGE_FUZZ_TARGET` picks the target.
enum FuzzTarget: String, CaseIterable {
  /// `Safetensors.decode`: weights, checkpoints, caches.
  case safetensors
  /// `ImageFile.decode`: PNG and JPEG, through libpng and libjpeg-turbo.
  case image
  /// `IDX.parse` (and `gunzip` when the bytes are gzip): Fashion-MNIST's files.
  case idx
  /// `CIFAR.parse`: CIFAR-10 and CIFAR-100 binary records.
  case cifar
  /// The stored JSON configs: classifier and inverter config.json, training results, the factor
  /// regressor's record (the first byte picks which).
  case config
  /// `DatasetSource`: the `--dataset` name parser.
  case datasetName = "dataset-name"

  func run(_ data: Data) {
    switch self {
    case .safetensors:
      if let file = try? Safetensors.decode(data) {
        for (_, tensor) in file.tensors { _ = tensor.rawBytes().count }
      }
    case .image:
      if let image = try? ImageFile.decode(data, name: "input") { _ = image.shape }
    case .idx:
      _ = try? IDX.parse(data.starts(with: [0x1F, 0x8B]) ? try gunzip(data, limit: 10_000_000) : data)
    case .cifar:
      let variant: CIFAR.Variant = data.first.map { $0 % 2 == 0 } ?? true ? .cifar10 : .cifar100
      let classes = variant == .cifar10 ? 10 : 100
      if let dataset = try? CIFAR.parse(data.dropFirst(), variant: variant, classNames: (0..<classes).map { "c\($0)" }) {
        _ = try? dataset.batch(at: [0, dataset.count - 1])
      }
    case .config:
      guard let selector = data.first else { return }
      let json = Data(data.dropFirst())
      let decoder = JSONDecoder()
      switch selector % 5 {
      case 0: _ = try? decoder.decode(ClassifierConfig.self, from: json)
      case 1: _ = try? decoder.decode(InverterConfig.self, from: json)
      case 2: _ = try? decoder.decode(InverterTrainingResults.self, from: json)
      case 3: _ = try? decoder.decode(ClassifierTrainingResults.self, from: json)
      default: _ = try? decoder.decode(FactorRegressor.Record.self, from: json)
      }
    case .datasetName:
      if let source = try? DatasetSource(String(decoding: data, as: UTF8.self)) { _ = source.kind }
    }
  }
}

/// The target `AFTERIMAGE_FUZZ_TARGET` names; anything else stops with the list.
let target: FuzzTarget = {
  let name = ProcessInfo.processInfo.environment["AFTERIMAGE_FUZZ_TARGET"] ?? ""
  guard let target = FuzzTarget(rawValue: name) else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    FileHandle.standardError.write(Data("set AFTERIMAGE_FUZZ_TARGET to one of: \(names)\n".utf8))
    exit(2)
  }
  Torch.ensureInitialised()
  return target
}()

/// libFuzzer's per-input callback.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  target.run(bytes.map { Data(bytes: $0, count: count) } ?? Data())
  return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?,
  _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The entry point SwiftPM links an executable target to (`main` is an alias of it): libFuzzer's
/// driver, which parses libFuzzer's flags and calls `fuzzOneInput` per input.
@_cdecl("afterimage_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  var count = argc
  var arguments = argv
  return LLVMFuzzerRunDriver(&count, &arguments, fuzzOneInput)
}
