import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

/// Every shipped model, built from its config.json, names exactly the tensors of its
/// model.safetensors, and every tensor stored anywhere in its module tree is in its state dict,
/// the trained ones in `namedParameters()`. The stored tensors are found by walking the objects
/// with `Mirror`, independently of how modules declare their state.
final class ParameterReachabilityTests: XCTestCase {
  static let models = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("models")

  /// The run folders under models/ holding a config.json and a model.safetensors.
  func shippedModelFolders() throws -> [URL] {
    let manager = FileManager.default
    var folders: [URL] = []
    for group in try manager.contentsOfDirectory(at: Self.models, includingPropertiesForKeys: nil) {
      guard let runs = try? manager.contentsOfDirectory(at: group, includingPropertiesForKeys: nil) else { continue }
      for run in runs
      where manager.fileExists(atPath: run.appendingPathComponent("config.json").path)
        && manager.fileExists(atPath: run.appendingPathComponent("model.safetensors").path)
      {
        folders.append(run)
      }
    }
    return folders.sorted { $0.path < $1.path }
  }

  /// The module a run folder's model.safetensors holds: an inverter's generator (its config
  /// names a classifier) or a classifier's network.
  func makeModule(_ folder: URL) throws -> Module {
    let run = RunDirectory(url: folder)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: run.configURL)) as? [String: Any]
    if json?["classifier"] != nil {
      return try run.readJSON(InverterConfig.self, from: run.configURL).makeGenerator()
    }
    return try run.readJSON(ClassifierConfig.self, from: run.configURL).makeNetwork()
  }

  func testEveryShippedModelReachesEveryStoredTensor() throws {
    let folders = try shippedModelFolders()
    XCTAssertGreaterThanOrEqual(folders.count, 18, "classifiers, evaluation classifiers and inverters")
    for folder in folders {
      let name = folder.path.dropFirst(Self.models.path.count + 1)
      let module = try makeModule(folder)
      let file = try Safetensors.read(folder.appendingPathComponent("model.safetensors"))
      let stateNames = module.stateDict().map(\.name)
      XCTAssertEqual(Set(stateNames).count, stateNames.count, "\(name): state-dict names repeat")
      XCTAssertEqual(Set(stateNames), Set(file.tensors.map(\.name)), "\(name): the file and the module name the same tensors")
      XCTAssertNoThrow(try module.loadStateDict(file.dictionary), "\(name)")

      let stored = storedTensors(in: module)
      let parameters = Set(module.namedParameters().map { ObjectIdentifier($0.tensor) })
      let state = Set(module.stateDict().map { ObjectIdentifier($0.tensor) })
      XCTAssertEqual(stored.filter(\.requiresGrad).count, parameters.count, "\(name)")
      for tensor in stored {
        XCTAssertTrue(state.contains(ObjectIdentifier(tensor)), "\(name): a stored \(tensor.shape) tensor is not in the state dict")
        if tensor.requiresGrad {
          XCTAssertTrue(parameters.contains(ObjectIdentifier(tensor)), "\(name): a trained \(tensor.shape) tensor is not in namedParameters()")
        }
      }
    }
  }

  /// Every distinct tensor reachable from `root` through stored properties, optionals,
  /// collections and tuples, whatever holds them.
  func storedTensors(in root: AnyObject) -> [Tensor] {
    var seen = Set<ObjectIdentifier>()
    var tensors: [Tensor] = []
    func visit(_ value: Any) {
      if let tensor = value as? Tensor {
        if seen.insert(ObjectIdentifier(tensor)).inserted { tensors.append(tensor) }
        return
      }
      let mirror = Mirror(reflecting: value)
      if mirror.displayStyle == .class {
        guard seen.insert(ObjectIdentifier(value as AnyObject)).inserted else { return }
      }
      var current: Mirror? = mirror
      while let level = current {
        for child in level.children { visit(child.value) }
        current = level.superclassMirror
      }
    }
    visit(root)
    return tensors
  }

  func testTheWalkFindsTensorsOutsideTheDeclarations() {
    final class Holder {
      let loose = Tensor.zeros([2])
      let nested: [String: (Int, Tensor?)] = ["a": (1, Tensor.ones([3]))]
      let layer = Linear(2, 2)
    }
    let holder = Holder()
    let found = storedTensors(in: holder)
    XCTAssertEqual(found.count, 4, "loose, nested, and the layer's weight and bias")
    XCTAssertTrue(found.contains { $0 === holder.loose })
    XCTAssertTrue(found.contains { $0 === holder.layer.weight })
  }
}
