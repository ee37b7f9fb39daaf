import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage demo`: the first command a new user runs. With the shipped classifiers and
/// inverters it runs the key experiments of the paper as numbers, writes one HTML report and
/// one results.json, and prints the headline table.
struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the key experiments on the shipped models: writes OUT/report.html and OUT/results.json and prints the headline table (a few minutes on 2 cores).")

  @Option(help: "Folder for the report, results.json and each experiment's figures.")
  var out = "afterimage-demo"
  @Option(help: "Folder of the shipped models (ignored with --train).")
  var models = "models"
  @Flag(help: "First retrain every shipped model from scratch into OUT/models with its recorded command (about 3 hours on 2 cores), then run the demo on those.")
  var train = false
  @Option(help: "Data sets, comma-separated: shapes, fashion-mnist.")
  var datasets = DemoPlan.datasets.joined(separator: ",")
  @Option(help: "Held-out images per data set for the side-by-side table (the other experiments scale with it).")
  var count = 500
  @Option(help: "Gradient steps of the optimisation-based inversion baseline (0: leave it out).")
  var optimizeSteps = 200
  @Option(help: "Threads (default: all cores).")
  var threads: Int?
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 20, "--count must be at least 20 (retrieval is scored among 10)")
    try require(optimizeSteps >= 0, "--optimize-steps must be 0 or more")
    try require(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
    for name in chosenDatasets where !DemoPlan.datasets.contains(name) {
      throw ValidationError("the demo runs on shapes and fashion-mnist (the data sets models are shipped for), not '\(name)'")
    }
  }

  var chosenDatasets: [String] { datasets.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }

  func run() throws {
    Torch.ensureInitialised()
    if let threads { Torch.threadCount = threads }
    let start = Date()
    let device = try compute.resolved()
    print("Afterimage \(Afterimage.version) on libtorch \(Torch.version), \(Torch.threadCount) threads, device \(device)")
    let modelsFolder = train ? "\(out)/models" : models
    if train {
      print("Retraining every shipped model into \(modelsFolder) (about 3 hours on 2 cores)…")
      for (recipe, seconds) in try Recipes.train(Recipes.all, models: modelsFolder, threads: threads, device: compute.device) {
        print("  \(recipe.name): \(ProgressBar.clock(seconds))")
      }
    }
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    var plan = DemoPlan(models: modelsFolder, out: out, count: count, optimizeSteps: optimizeSteps)
    for data in chosenDatasets { try plan.add(dataset: data) }
    for note in plan.notes { print(note) }
    let results = try plan.run(with: ExperimentRunner(device: device))
    let headline = try DemoHeadline(plan: plan, results: results)
    let page = try HTMLReport.build(
      from: (plan.steps.map(\.folder) + (try plan.storedStudies()).map(\.folder) + (try plan.storedBeyondStudies()).map(\.folder))
        .map { URL(fileURLWithPath: $0) }, title: "Afterimage demo",
      preface: headline.html(overview: plan.overviewFigures()))
    try FileSystem.writeAtomically(Data(page.utf8), to: URL(fileURLWithPath: "\(out)/report.html"))
    try JSONFiles.write(DemoResults(headline: headline, plan: plan, results: results), to: URL(fileURLWithPath: "\(out)/results.json"))
    print("")
    print(headline.text)
    for study in try plan.storedStudies() {
      print("\n\(study.dataset), shipped seed study (\(study.folder), made by `afterimage models train \(ModelID.seedStudy(dataset: study.dataset).name)`):")
      study.result.lines.forEach { print($0) }
    }
    for study in try plan.storedBeyondStudies() {
      print("\nBeyond the paper, shipped \(study.study.rawValue) study (\(study.folder), made by `afterimage models train \(ModelID.study(study.study).name)`, which `models list` spells out):")
      if let summary = study.result.summary { print(summary) }
      print("(figures and tables: the report's section \"\(study.result.title)\", and \(study.folder))")
    }
    print(String(format: "Wrote %@/report.html (%d KiB) and %@/results.json in %@.", out, page.utf8.count / 1024, out, ProgressBar.clock(Date().timeIntervalSince(start))))
  }
}
