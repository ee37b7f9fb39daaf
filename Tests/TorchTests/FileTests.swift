import Foundation
import TestSupport
import Torch
import XCTest

/// safetensors files, state-dict loading, TorchScript modules, and errors a user can cause.
final class FileTests: XCTestCase {
  func testSafetensorsRoundTripsEveryDType() throws {
    let directory = try temporaryDirectory()
    let base = Tensor([0, 1, -2, 0.5, 3, 100] as [Float], shape: [2, 3])
    var tensors: [(name: String, tensor: Tensor)] = DType.allCases.map { ("t_\($0)", base.abs().to($0)) }
    tensors.append(("scalar", Tensor(scalar: 4, dtype: .float64)))
    tensors.append(("empty", Tensor.zeros([0, 3])))
    let url = directory.appendingPathComponent("all.safetensors")
    try Safetensors.write(tensors, metadata: ["config": "{\"ch\": 32}", "format": "pt"], to: url)
    let file = try Safetensors.read(url)
    XCTAssertEqual(file.metadata, ["config": "{\"ch\": 32}", "format": "pt"])
    XCTAssertEqual(Set(file.tensors.map(\.name)), Set(tensors.map(\.name)))
    for (name, original) in tensors {
      let loaded = try file.tensor(name)
      XCTAssertEqual(loaded.dtype, original.dtype, name)
      XCTAssertEqual(loaded.shape, original.shape, name)
      XCTAssertEqual(loaded.rawBytes(), original.rawBytes(), name)
    }
    // The header is 8-byte aligned so the data can be memory-mapped with any alignment.
    let data = try Data(contentsOf: url)
    let headerSize = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    XCTAssertEqual(headerSize % 8, 0)
  }

  func testSafetensorsWrittenByPyTorchLoad() throws {
    let directory = try temporaryDirectory()
    let url = directory.appendingPathComponent("from-python.safetensors")
    let writer = try runPython("write_safetensors.py", [url.path]).trimmingCharacters(in: .whitespacesAndNewlines)
    print("safetensors written by: \(writer)")
    let file = try Safetensors.read(url)
    XCTAssertEqual(file.metadata["written_by"], writer)
    let expected = Tensor.arange(0, 12, dtype: .float64).reshaped([3, 4]) / 4 - 1
    for (name, dtype) in [("f32", DType.float32), ("f64", .float64), ("f16", .float16), ("bf16", .bfloat16),
                          ("i64", .int64), ("i32", .int32), ("u8", .uint8), ("bool", .bool)] {
      let loaded = try file.tensor(name)
      XCTAssertEqual(loaded.dtype, dtype, name)
      XCTAssertEqual(loaded.shape, [3, 4], name)
      let reference: Tensor
      switch dtype {
      case .uint8, .int32, .int64: reference = (expected * 4 + 4).to(dtype)
      case .bool: reference = expected .> 0
      default: reference = expected.to(dtype)
      }
      XCTAssertTrue(loaded.equals(reference), "\(name): \(loaded) vs \(reference)")
    }
    XCTAssertEqual(try file.tensor("nested.name.weight").shape, [2, 2, 1, 1])
  }

  func testTruncatedFileIsRejectedWithItsReason() throws {
    let directory = try temporaryDirectory()
    let url = directory.appendingPathComponent("weights.safetensors")
    try Safetensors.write([("w", Tensor.ones([100]))], to: url)
    let data = try Data(contentsOf: url)
    try data.prefix(data.count - 10).write(to: url)
    XCTAssertThrowsError(try Safetensors.read(url)) { error in
      XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
      XCTAssertTrue("\(error)".contains("weights.safetensors"), "\(error)")
    }
    try data.prefix(5).write(to: url)
    XCTAssertThrowsError(try Safetensors.read(url)) { XCTAssertTrue("\($0)".contains("fewer than the 8-byte"), "\($0)") }
    try data.prefix(30).write(to: url)
    XCTAssertThrowsError(try Safetensors.read(url)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
  }

  func testHeaderThatLiesAboutOffsetsIsRejected() throws {
    func file(header: String, dataBytes: Int) -> Data {
      var bytes = Array(header.utf8)
      while bytes.count % 8 != 0 { bytes.append(0x20) }
      var data = Data()
      var size = UInt64(bytes.count).littleEndian
      withUnsafeBytes(of: &size) { data.append(contentsOf: $0) }
      data.append(contentsOf: bytes)
      data.append(Data(count: dataBytes))
      return data
    }
    let wrongSpan = file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#, dataBytes: 16)
    XCTAssertThrowsError(try Safetensors.decode(wrongSpan)) {
      XCTAssertTrue("\($0)".contains("needs 16 bytes"), "\($0)")
    }
    let pastEnd = file(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#, dataBytes: 16)
    XCTAssertThrowsError(try Safetensors.decode(pastEnd)) { XCTAssertTrue("\($0)".contains("holds only 16"), "\($0)") }
    let overlap = file(
      header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
      dataBytes: 12)
    XCTAssertThrowsError(try Safetensors.decode(overlap)) { XCTAssertTrue("\($0)".contains("overlap"), "\($0)") }
    let unknownType = file(header: #"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, dataBytes: 8)
    XCTAssertThrowsError(try Safetensors.decode(unknownType)) { XCTAssertTrue("\($0)".contains("C64"), "\($0)") }
    let notJSON = file(header: "not json at all", dataBytes: 0)
    XCTAssertThrowsError(try Safetensors.decode(notJSON)) { XCTAssertTrue("\($0)".contains("JSON"), "\($0)") }
    let hugeHeader = Data([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x7b, 0x7d])
    XCTAssertThrowsError(try Safetensors.decode(hugeHeader)) { XCTAssertTrue("\($0)".contains("100 MB"), "\($0)") }
  }

  func testMissingFileSaysSo() {
    XCTAssertThrowsError(try Safetensors.read(URL(fileURLWithPath: "/nonexistent/model.safetensors"))) {
      XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
    }
  }

  func testLoadingWeightsNamesMissingUnexpectedAndMismatchedKeys() throws {
    let block = TinyBlock()
    var weights = Dictionary(uniqueKeysWithValues: block.stateDict().map { ($0.name, $0.tensor.clone()) })
    weights["norm.bias"] = nil
    weights["extra.weight"] = Tensor.ones([1])
    weights["layers.0.weight"] = Tensor.ones([5, 8])
    weights["conv.bias"] = Tensor.ones([8], dtype: .float64)
    let before = block.layers.layers[0].stateDict()[0].tensor.clone()
    XCTAssertThrowsError(try block.loadStateDict(weights)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("missing keys: norm.bias"), text)
      XCTAssertTrue(text.contains("unexpected keys: extra.weight"), text)
      XCTAssertTrue(text.contains("'layers.0.weight' has shape [5, 8] in the file, the model expects [4, 8]"), text)
      XCTAssertTrue(text.contains("'conv.bias' has dtype float64"), text)
    }
    XCTAssertTrue(block.layers.layers[0].stateDict()[0].tensor.equals(before), "a failed load changes nothing")
  }

  func testWeightsRoundTripThroughAFile() throws {
    let directory = try temporaryDirectory()
    let url = directory.appendingPathComponent("block.safetensors")
    let original = TinyBlock()
    _ = original(Tensor.randn([2, 3, 4, 4]))  // moves running statistics and u, v away from their start
    try original.saveWeights(to: url, metadata: ["arch": "tiny"])
    let copy = TinyBlock()
    withNoGrad { copy.conv.weight.fill(0) }
    try copy.loadWeights(from: url)
    for ((name, a), (_, b)) in zip(original.stateDict(), copy.stateDict()) {
      XCTAssertTrue(a.equals(b), name)
    }
    XCTAssertEqual(try Safetensors.read(url).metadata["arch"], "tiny")
  }

  func testLibtorchErrorsBecomeSwiftErrorsInsideACatchingScope() {
    let a = Tensor.ones([2, 3])
    let b = Tensor.ones([4, 5])
    XCTAssertThrowsError(try catchingTorchErrors { a.matmul(b) }) { error in
      XCTAssertTrue("\(error)".contains("cannot be multiplied"), "\(error)")
    }
    XCTAssertThrowsError(try catchingTorchErrors { _ = a.reshaped([7]).sum() }) { error in
      XCTAssertTrue("\(error)".contains("invalid for input of size 6"), "\(error)")
    }
    // The scope is left clean: later failures are not blamed on earlier ones.
    XCTAssertEqual(try catchingTorchErrors { a.sum().item() }, 6)
  }

  func testCodeAfterAFailureInACatchingScopeThrowsInsteadOfTrapping() {
    let images = Tensor.ones([2, 3, 4, 4])
    var reachedAfterCheck = false
    XCTAssertThrowsError(try catchingTorchErrors { () -> Double in
      let logits = images.matmul(Tensor.ones([5, 7]))  // fails: the placeholder comes back
      // Swift code that reads shapes goes on without trapping …
      let (batch, classes) = (logits.shape[0], logits.shape[1])
      XCTAssertEqual(logits.size(3), 0)
      let values = logits.softmax(dim: 1).scalars(as: Float.self)
      XCTAssertEqual(values.count, batch * classes)
      // … and code that indexes what it read checks first: the matmul's error, not a trap.
      try throwIfTorchFailed()
      reachedAfterCheck = true
      return Double(values[0])
    }) { error in
      XCTAssertTrue("\(error)".contains("matmul") || "\(error)".contains("cannot be multiplied") || "\(error)".contains("mat"), "\(error)")
    }
    XCTAssertFalse(reachedAfterCheck)
    XCTAssertNoThrow(try throwIfTorchFailed(), "outside a scope there is nothing to throw")
    XCTAssertNoThrow(try catchingTorchErrors { try throwIfTorchFailed() })
  }

  func testTorchScriptModuleGivesPyTorchsOutputs() throws {
    let directory = try temporaryDirectory()
    let modelPath = directory.appendingPathComponent("model.pt").path
    let referencePath = directory.appendingPathComponent("reference.safetensors").path
    try runPython("export_torchscript.py", [modelPath, referencePath])
    let module = try TorchScriptModule(contentsOf: modelPath)
    try module.train(false)
    let reference = try Safetensors.read(URL(fileURLWithPath: referencePath))
    let output = try module(try reference.tensor("input"))
    assertClose(output, try reference.tensor("output"), atol: 1e-6)
    XCTAssertEqual(module.parameterCount, try reference.tensor("parameter_count").itemInt())

    XCTAssertThrowsError(try module(Tensor.ones([2, 3, 8, 8]))) { error in
      XCTAssertFalse("\(error)".isEmpty)
      print("wrong input size gives: \(error)")
    }
  }

  func testNonTorchScriptFilesAreRejectedClearly() throws {
    let directory = try temporaryDirectory()
    let path = directory.appendingPathComponent("not-a-model.pt").path
    try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
    XCTAssertThrowsError(try TorchScriptModule(contentsOf: path)) { error in
      XCTAssertTrue("\(error)".contains("is not a TorchScript archive"), "\(error)")
    }
    XCTAssertThrowsError(try TorchScriptModule(contentsOf: "/nonexistent.pt")) { error in
      XCTAssertTrue("\(error)".contains("no such file"), "\(error)")
    }
  }
}
