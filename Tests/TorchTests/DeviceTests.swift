import Foundation
import TestSupport
import Torch
import XCTest

/// Devices, mixed precision and the build facts `afterimage doctor` prints.
final class DeviceTests: XCTestCase {
  func testDeviceNamesResolveOrSayWhatIsWrong() throws {
    XCTAssertEqual(try Device.resolve("cpu"), .cpu)
    XCTAssertEqual(try Device.resolve("auto"), Torch.cudaIsAvailable ? .cuda(0) : .cpu)
    XCTAssertThrowsError(try Device.resolve("gpu")) { XCTAssertTrue("\($0)".contains("use cpu, cuda, cuda:N or auto"), "\($0)") }
    XCTAssertThrowsError(try Device.resolve("cuda:-1"))
    if !Torch.cudaIsAvailable {
      XCTAssertThrowsError(try Device.resolve("cuda")) { XCTAssertTrue("\($0)".contains("no usable CUDA"), "\($0)") }
    }
    XCTAssertThrowsError(try Device.resolve("cuda:\(Torch.cudaDeviceCount + 7)"))
  }

  func testBFloat16AutocastLowersMatrixProductsAndNothingElse() {
    let a = Tensor.randn([4, 8], generator: Generator(seed: 1))
    let b = Tensor.randn([8, 3], generator: Generator(seed: 2))
    XCTAssertEqual(Precision.float32.run(on: .cpu) { a.matmul(b) }.dtype, .float32)
    let (product, sum) = Precision.bf16.run(on: .cpu) { (a.matmul(b), a + a) }
    XCTAssertEqual(product.dtype, .bfloat16, "autocast runs matmul in bf16")
    XCTAssertEqual(sum.dtype, .float32, "elementwise ops keep float32")
    XCTAssertEqual(a.matmul(b).dtype, .float32, "autocast ends with its region")
    // bf16 keeps 8 bits of mantissa: the products agree to about 1%.
    let difference = maxDifference(product.to(.float32), a.matmul(b))
    XCTAssertLessThan(difference, 0.05 * a.matmul(b).abs().max().item())
    XCTAssertGreaterThan(difference, 0, "the product was computed in bf16, not float32")
  }

  func testBuildConfigurationIsRead() {
    let cpu = Torch.buildInfo
    XCTAssertNotNil(cpu.oneDNN, Torch.buildConfiguration)
    XCTAssertNotNil(cpu.blas, Torch.buildConfiguration)
    XCTAssertEqual(cpu.cuda != nil, Torch.buildConfiguration.contains("USE_CUDA=ON") || Torch.buildConfiguration.contains("USE_CUDA=1"))
    // A CUDA wheel's configuration, as `torch.__config__.show()` prints it there.
    let cuda = Torch.parseBuildConfiguration("""
      PyTorch built with:
        - GCC 13.3
        - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64 architecture applications
        - Intel(R) MKL-DNN v3.7.1 (Git Hash 8d263e693366ef8db40acc569cc7d8edf644556d)
        - CPU capability usage: AVX2
        - CUDA Runtime 13.0
        - CuDNN 9.10.2
        - Build settings: BLAS_INFO=mkl, USE_CUDA=ON, USE_CUDNN=ON, USE_MKL=ON,
      """)
    XCTAssertEqual(cuda.cuda, "13.0")
    XCTAssertEqual(cuda.cuDNN, "9.10.2")
    XCTAssertEqual(cuda.oneDNN, "v3.7.1")
    XCTAssertEqual(cuda.cpuCapability, "AVX2")
    XCTAssertEqual(cuda.blas, "Intel(R) oneAPI Math Kernel Library Version 2024.2")
  }

  func testTheLinkedLibtorchIsTheProjectsPyTorch() throws {
    XCTAssertTrue(Torch.version.hasPrefix("2."), "libtorch \(Torch.version)")
    let folder = try XCTUnwrap(Torch.libraryFolder)
    let python = try runPythonCode("import torch, os; print(torch.__version__); print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
      .split(separator: "\n").map(String.init)
    XCTAssertTrue(python[0].hasPrefix(Torch.version), "the Python references run torch \(python[0]), the Swift side libtorch \(Torch.version)")
    XCTAssertEqual(URL(fileURLWithPath: folder).resolvingSymlinksInPath().path, URL(fileURLWithPath: python[1]).resolvingSymlinksInPath().path,
                   "the same libtorch files")
  }
}
