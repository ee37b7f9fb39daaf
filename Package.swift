// swift-tools-version: 6.0
// Afterimage: feedforward inversion of image classifiers, in Swift over libtorch.
//
// libtorch comes from Debian's libtorch-dev by default. To build against another libtorch
// (a CUDA build, or the one inside a PyTorch wheel), point LIBTORCH at the folder holding its
// include/ and lib/:   LIBTORCH=/opt/libtorch swift build
import Foundation
import PackageDescription

let libtorch = ProcessInfo.processInfo.environment["LIBTORCH"]

/// Header folders: Debian puts the C++ API under /usr/include/torch/csrc/api/include.
let torchHeaders: [String] = {
  if let root = libtorch {
    return ["-I\(root)/include", "-I\(root)/include/torch/csrc/api/include"]
  }
  return ["-I/usr/include/torch/csrc/api/include"]
}()

/// Library folder and run-time search path for a libtorch outside the system's.
let torchLibraryFlags: [String] = {
  guard let root = libtorch else { return [] }
  return ["-L\(root)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(root)/lib"]
}()

let package = Package(
  name: "Afterimage",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "afterimage", targets: ["afterimage"]),
    .library(name: "Torch", targets: ["Torch"]),
    .library(name: "Afterimage", targets: ["Afterimage"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
  ],
  targets: [
    .target(
      name: "CTorch",
      cSettings: [.unsafeFlags(["-O2"])],
      cxxSettings: [
        .define("_GLIBCXX_USE_CXX11_ABI", to: "1"),
        .unsafeFlags(torchHeaders + ["-O2", "-Wno-deprecated-declarations"]),
      ],
      linkerSettings: [
        .unsafeFlags(torchLibraryFlags),
        .linkedLibrary("torch"),
        .linkedLibrary("torch_cpu"),
        .linkedLibrary("c10"),
        .linkedLibrary("dl"),
      ]
    ),
    .target(name: "Torch", dependencies: ["CTorch"]),
    .target(
      name: "CImaging",
      linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("turbojpeg"), .linkedLibrary("z")]
    ),
    .target(name: "Afterimage", dependencies: ["Torch", "CImaging"]),
    .executableTarget(
      name: "afterimage",
      dependencies: [
        "Afterimage", "Torch",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "afterimage-bench", dependencies: ["Afterimage", "Torch"], path: "benchmarks/swift"),
    .target(name: "TestSupport", dependencies: ["Torch"], path: "Tests/TestSupport"),
    .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
    .testTarget(name: "AfterimageTests", dependencies: ["Afterimage", "Torch", "TestSupport"]),
  ],
  swiftLanguageModes: [.v5],
  cxxLanguageStandard: .cxx17
)
