// swift-tools-version: 6.0
// Fuzz targets for Afterimage's readers of untrusted bytes, run by libFuzzer under
// AddressSanitizer. Built and run by scripts/fuzz (see fuzz/README.md); kept out of the main
// package because only a build with `-sanitize=fuzzer` links libFuzzer's driver.
import PackageDescription

let package = Package(
  name: "AfterimageFuzz",
  dependencies: [.package(name: "Afterimage", path: "..")],
  targets: [
    .executableTarget(
      name: "afterimage-fuzz",
      dependencies: [.product(name: "Afterimage", package: "Afterimage"), .product(name: "Torch", package: "Afterimage")],
      // No top-level code: the entry point is `afterimage_fuzz_main` (FuzzTargets.swift).
      swiftSettings: [.unsafeFlags(["-parse-as-library"])]
    )
  ],
  swiftLanguageModes: [.v5]
)
