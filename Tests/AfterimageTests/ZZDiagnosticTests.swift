@testable import Afterimage
import Foundation
import TestSupport
import Torch
import XCTest

final class ZZDiagnosticTests: XCTestCase {
  func testDiagnoseBatchNormModes() throws {
    guard let path = ProcessInfo.processInfo.environment["DIAG_INVERTER"] else { return }
    let model = try Inverter.load(path)
    let test = try XCTUnwrap(try DatasetSource("shapes").open(split: ProcessInfo.processInfo.environment["DIAG_SPLIT"] == "train" ? .train : .test, resolution: 32).dataset as? ShapesDataset)
    let batch = try test.batch(at: Array(0..<500))
    let code = try model.represent(batch.images)
    let originals = GeometricRuler.read(batch.images)
    for mode in ["eval", "train"] {
      let g = model.generator
      if mode == "train" { g.train() } else { g.eval() }
      let images = withNoGrad { (g(logits: model.config.preprocess(code), noise: model.noise(count: 500, seed: 0)) + 1) / 2 }
      let agreement = GeometricRuler.agreement(reconstructions: GeometricRuler.read(images), originals: originals)
      print("DIAG", path, mode, agreement.mapValues { String(format: "%.2f", $0.value) })
      try PNG.write(ImageGrid.make(Tensor.stack([batch.images[0..<16], images[0..<16]], dim: 1).flattened(from: 0, through: 1), columns: 8, scale: 2), to: URL(fileURLWithPath: "/tmp/diag/\(URL(fileURLWithPath: path).lastPathComponent)-\(mode).png"))
    }
  }
}
