import Afterimage
import AfterimageServer
import ArgumentParser
import Foundation
import Torch

/// `afterimage explore`: a local web page to edit logits and watch the reconstructions follow.
struct Explore: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Start the explorer: a local web page to edit an image's logits and watch the reconstructions change live.")

  @Option(parsing: .upToNextOption, help: "Inverter run directories, shown side by side (default: the shipped Shapes standard and robust fidelity inverters).")
  var inverter: [String] = []
  @Option(help: "The independent evaluation classifier whose verdict goes under each reconstruction (default: models/eval/<data set> when it exists).")
  var evaluation: String?
  @Option(help: "Address to listen on (127.0.0.1: this machine only).") var host = "127.0.0.1"
  @Option(help: "Port (0: any free one; the URL is printed).") var port = 8080
  @Option(help: "Threads (default: all cores).") var threads: Int?
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require((0...65535).contains(port), "--port must be 0 to 65535")
    try require(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
  }

  func run() async throws {
    if let threads { Torch.threadCount = threads }
    let device = try compute.resolved()
    let paths = inverter.isEmpty ? ShippedModels.fidelityInverters(of: "shapes").map { ModelID.inverter($0).path(in: ShippedModels.folder) } : inverter
    let inverters = try paths.map { try Inverter.load($0, device: device) }
    let dataset = inverters[0].config.dataset
    let evaluator = try (evaluation ?? EvaluationClassifier.shipped(for: dataset)).map { try Classifiers.load($0, device: device) }
    let testSet = try DatasetSource(dataset).open(split: .test, resolution: inverters[0].config.resolution).dataset
    let columns = zip(paths, inverters).map { path, inverter in
      Explorer.Column(name: URL(fileURLWithPath: path).lastPathComponent, inverter: inverter, evaluation: evaluator)
    }
    let explorer = try Explorer(columns: columns, testSet: testSet)
    let host = self.host
    let app = ExplorerServer.application(explorer: explorer, host: host, port: port) { port in
      print("explorer: http://\(host):\(port)/  (\(columns.map(\.name).joined(separator: ", ")) on \(testSet.name), \(device); Ctrl-C stops it)")
    }
    try await app.runService()
  }
}
