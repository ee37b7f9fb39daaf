// swift-tools-version: 6.0
// Afterimage: feedforward inversion of image classifiers, in Swift over libtorch.
//
// libtorch comes from the PyTorch 2.x wheel that scripts/setup installs into .venv (its
// torch/include and torch/lib). To build against another libtorch 2.x (a CUDA wheel, a libtorch
// zip), point LIBTORCH at the folder holding its include/ and lib/:
//   LIBTORCH=/opt/libtorch swift build
// The binary finds the libraries through its run-time search path (rpath), set to that lib/.
import Foundation
import PackageDescription

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

/// The libtorch root: LIBTORCH, else the torch package inside .venv/lib/python3.*/site-packages.
let libtorch: String = {
  if let root = ProcessInfo.processInfo.environment["LIBTORCH"], !root.isEmpty { return root }
  let lib = "\(packageRoot)/.venv/lib"
  let pythons = (try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []
  for python in pythons.sorted() where python.hasPrefix("python3") {
    let torch = "\(lib)/\(python)/site-packages/torch"
    if FileManager.default.fileExists(atPath: "\(torch)/include/torch/script.h") { return torch }
  }
  // Not set up yet: the shim's first line then says to run scripts/setup.
  return "\(lib)/python3/site-packages/torch"
}()

let torchHeaders = ["-I\(libtorch)/include", "-I\(libtorch)/include/torch/csrc/api/include"]

/// A CUDA libtorch (a CUDA wheel) also ships libtorch_cuda and libc10_cuda; linking them
/// registers the CUDA backend.
let hasCUDA = FileManager.default.fileExists(atPath: "\(libtorch)/lib/libtorch_cuda.so")
let torchLibraries: [LinkerSetting] =
  ["torch", "torch_cpu", "c10"].map { .linkedLibrary($0) }
  + (hasCUDA ? ["torch_cuda", "c10_cuda"].map { .linkedLibrary($0) } : [])

/// Library folder and run-time search path. --no-as-needed keeps libtorch_cuda, whose symbols
/// the shim never names, among the libraries loaded at start-up.
let torchLibraryFlags = [
  "-L\(libtorch)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(libtorch)/lib", "-Xlinker", "--no-as-needed",
]

let package = Package(
  name: "Afterimage",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "afterimage", targets: ["afterimage"]),
    .library(name: "Torch", targets: ["Torch"]),
    .library(name: "Afterimage", targets: ["Afterimage"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
  ],
  targets: [
    .target(
      name: "CTorch",
      cSettings: [.unsafeFlags(["-O2"])],
      cxxSettings: [
        .define("_GLIBCXX_USE_CXX11_ABI", to: "1"),
        // c10d's Gloo process group (distributed.cpp); the Gloo declarations it needs are ours.
        .define("USE_C10D_GLOO"),
        .headerSearchPath("declarations"),
        .unsafeFlags(torchHeaders + ["-O2", "-Wno-deprecated-declarations"]),
      ],
      linkerSettings: [.unsafeFlags(torchLibraryFlags)] + torchLibraries + [.linkedLibrary("dl")]
    ),
    .target(name: "Torch", dependencies: ["CTorch"]),
    .target(
      name: "CImaging",
      linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("turbojpeg"), .linkedLibrary("z")]
    ),
    .target(name: "Afterimage", dependencies: ["Torch", "CImaging"]),
    .target(
      name: "AfterimageServer",
      dependencies: [
        "Afterimage", "Torch", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "HTTPTypes", package: "swift-http-types"),
      ]),
    .executableTarget(
      name: "afterimage",
      dependencies: [
        "Afterimage", "AfterimageServer", "Torch",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "afterimage-bench", dependencies: ["Afterimage", "AfterimageServer", "Torch"], path: "benchmarks/swift"),
    .target(name: "TestSupport", dependencies: ["Torch"], path: "Tests/TestSupport"),
    .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
    .testTarget(name: "AfterimageTests", dependencies: ["Afterimage", "Torch", "TestSupport"]),
    .testTarget(name: "AfterimageServerTests", dependencies: ["AfterimageServer", "Afterimage", "Torch", "TestSupport"]),
  ],
  swiftLanguageModes: [.v5],
  cxxLanguageStandard: .cxx17
)
