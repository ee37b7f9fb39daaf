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
  var datasets = "shapes,fashion-mnist"
  @Option(help: "Held-out images per data set for the side-by-side table (the other experiments scale with it).")
  var count = 200
  @Option(help: "Gradient steps of the optimisation-based inversion baseline (0: leave it out).")
  var optimizeSteps = 200
  @Option(help: "Threads (default: all cores).")
  var threads: Int?
  @OptionGroup var compute: DeviceOptions

  func validate() throws {
    try require(count >= 20, "--count must be at least 20 (retrieval is scored among 10)")
    try require(optimizeSteps >= 0, "--optimize-steps must be 0 or more")
    try require(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
    for name in chosenDatasets where !["shapes", "fashion-mnist"].contains(name) {
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
    for step in plan.steps {
      print("\n== \(step.title)")
      var command = try AfterimageCommand.parseAsRoot(step.arguments + ["--device", compute.device])
      try command.run()
    }
    let headline = try DemoHeadline(plan: plan)
    let page = try HTMLReport.build(
      from: plan.steps.map { URL(fileURLWithPath: $0.folder) }, title: "Afterimage demo",
      preface: headline.html)
    let reportURL = URL(fileURLWithPath: "\(out)/report.html")
    try Safetensors.writeAtomically(Data(page.utf8), to: reportURL)
    try headline.writeResults(to: URL(fileURLWithPath: "\(out)/results.json"))
    print("")
    print(headline.text)
    print(String(format: "Wrote %@/report.html (%d KiB) and %@/results.json in %@.", out, page.utf8.count / 1024, out, ProgressBar.clock(Date().timeIntervalSince(start))))
  }
}

/// The experiments the demo runs, in order, each an `afterimage analyze …` command line.
struct DemoPlan {
  struct Step {
    let title: String
    /// The experiment (`compare`, `factors`, …), the data set, and what it ran on.
    let experiment: String
    let dataset: String
    let subject: String
    let folder: String
    let arguments: [String]
  }

  let models: String
  let out: String
  let count: Int
  let optimizeSteps: Int
  var steps: [Step] = []

  /// The inverters compared, in the headline's order: standard vs robust, fidelity vs the
  /// paper's preset, then the baselines.
  static let inverterKinds = ["standard-fidelity", "robust-fidelity", "standard-paper", "robust-paper", "standard-upconv", "standard-deepsim"]

  func inverter(_ data: String, _ kind: String) -> String { "\(models)/inverters/\(data)-\(kind)" }

  mutating func add(dataset data: String) throws {
    let required = ["classifiers/\(data)-standard", "classifiers/\(data)-robust", "eval/\(data)", "inverters/\(data)-standard-fidelity", "inverters/\(data)-robust-fidelity"]
    let missing = required.filter { !FileManager.default.fileExists(atPath: "\(models)/\($0)/model.safetensors") }
    guard missing.isEmpty else {
      throw ValidationError("the demo needs the shipped models; missing in \(models): \(missing.joined(separator: ", ")). Run it from the repository's root, pass --models DIR, retrain one with `afterimage models train NAME`, or everything with `afterimage demo --train`")
    }
    let evaluation = ["--evaluation", "\(models)/eval/\(data)"]
    let present = Self.inverterKinds.filter { FileManager.default.fileExists(atPath: "\(inverter(data, $0))/model.safetensors") }
    for kind in Self.inverterKinds where !present.contains(kind) {
      print("note: \(inverter(data, kind)) is not there; the demo leaves it out (`afterimage models train \(data)-\(kind)` trains it)")
    }
    var compare = ["analyze", "compare", "--inverters"] + present.map { inverter(data, $0) } + evaluation
    compare += ["--count", String(count), "--out", "\(out)/\(data)-compare"]
    if optimizeSteps > 0 { compare += ["--optimize", "\(models)/classifiers/\(data)-standard", "--optimize-steps", String(optimizeSteps)] }
    steps.append(Step(title: "\(data): every inverter on the same \(count) held-out images", experiment: "compare", dataset: data, subject: "all", folder: "\(out)/\(data)-compare", arguments: compare))
    for kind in ["standard", "robust"] {
      let model = inverter(data, "\(kind)-fidelity")
      func step(_ experiment: String, _ title: String, _ extra: [String]) {
        let folder = "\(out)/\(data)-\(experiment)-\(kind)"
        steps.append(Step(title: "\(data), \(kind) classifier: \(title)", experiment: experiment, dataset: data, subject: kind, folder: folder,
                          arguments: ["analyze", experiment, "--inverter", model] + (experiment == "factors" ? [] : evaluation) + extra + ["--out", folder]))
      }
      if data == "shapes" {
        step("factors", "which nuisance factors survive in the logits", ["--count", String(count * 5 / 2), "--train-count", String(count * 25), "--epochs", "3"])
      }
      let epsilon = data == "shapes" ? "8/255" : "0.1"
      step("adversarial", "reconstructions of PGD adversarial examples (ε \(epsilon))", ["--count", String(count / 2), "--attack", "pgd-linf:\(epsilon)"])
      if data == "fashion-mnist" {  // the Shapes classifiers get (nearly) every test image right
        step("misclassified", "reconstructions of misclassified images", ["--count", String(count * 5 / 2)])
      }
      let few = String(min(64, count))  // the curve experiments reconstruct each image many times
      step("logit-noise", "noise added to the logits", ["--count", few])
      step("logit-shift", "a constant added to every logit", ["--count", few])
      step("transforms", "image transformations: followed or ignored", ["--count", few])
    }
  }
}

/// The headline: the side-by-side table per data set, and standard vs robust on the findings
/// that have one number each; as terminal text, as HTML, and as results.json.
struct DemoHeadline {
  struct Row {
    let dataset: String
    let method: String
    let values: [String: Double]
  }

  var rows: [Row] = []
  /// Per data set and classifier kind: the finding's number.
  /// One finding's number for the standard and the robust classifier; a fraction shows as a
  /// percentage, any other number with three decimals.
  struct Finding {
    let dataset: String
    let finding: String
    let standard: Double?
    let robust: Double?
    var isFraction = true
    var format: String { isFraction ? "%.1f%%" : "%.3f" }
  }

  var findings: [Finding] = []
  var sections: [String: Any] = [:]

  static let columns: [(key: String, title: String, format: String)] = [
    ("psnr", "PSNR dB", "%.2f"), ("ssim", "SSIM", "%.3f"), ("perceptual_distance", "perc. dist", "%.3f"),
    ("eval_accuracy", "eval acc", "%.1f%%"), ("retrieval", "retr@10", "%.3f"), ("top1_agreement", "top-1 agr", "%.1f%%"),
    ("noise_diversity", "noise div", "%.3f"), ("frechet_distance", "Fréchet", "%.2f"),
  ]

  init(plan: DemoPlan) throws {
    for step in plan.steps {
      let data = try Data(contentsOf: URL(fileURLWithPath: "\(step.folder)/results.json"))
      let results = try JSONSerialization.jsonObject(with: data)
      sections[URL(fileURLWithPath: step.folder).lastPathComponent] = ["experiment": step.experiment, "dataset": step.dataset, "classifier": step.subject, "results": results]
      if step.experiment == "compare", let table = results as? [[String: Any]] {
        for entry in table {
          let name = entry["name"] as? String ?? "?"
          let method = name.hasPrefix("optimisation") ? "optimisation (standard)" : URL(fileURLWithPath: name).lastPathComponent.replacingOccurrences(of: "\(step.dataset)-", with: "")
          rows.append(Row(dataset: step.dataset, method: method, values: entry.compactMapValues { $0 as? Double }))
        }
      }
    }
    for data in Set(plan.steps.map(\.dataset)).sorted() {
      func value(_ experiment: String, _ kind: String, _ read: (Any) -> Double?) -> Double? {
        guard let section = sections["\(data)-\(experiment)-\(kind)"] as? [String: Any], let results = section["results"] else { return nil }
        return read(results)
      }
      func both(_ finding: String, _ experiment: String, isFraction: Bool = true, _ read: @escaping (Any) -> Double?) {
        let standard = value(experiment, "standard", read), robust = value(experiment, "robust", read)
        if standard != nil || robust != nil {
          findings.append(Finding(dataset: data, finding: finding, standard: standard, robust: robust, isFraction: isFraction))
        }
      }
      func classifierAccuracy(_ kind: String) -> Double? {
        let url = URL(fileURLWithPath: "\(plan.models)/classifiers/\(data)-\(kind)/results.json")
        let object = (try? Data(contentsOf: url)).flatMap { try? JSONSerialization.jsonObject(with: $0) } as? [String: Any]
        return (object?["evaluation"] as? [String: Any])?["clean_accuracy"] as? Double
      }
      findings.append(Finding(dataset: data, finding: "classifier test accuracy", standard: classifierAccuracy("standard"), robust: classifierAccuracy("robust")))
      both("PGD-20 fools the classifier", "adversarial") { ($0 as? [String: Any])?["attack_success"] as? Double }
      func fidelity(_ kind: String, _ key: String) -> Double? { rows.first { $0.dataset == data && $0.method == "\(kind)-fidelity" }?.values[key] }
      findings.append(Finding(dataset: data, finding: "eval classifier names the class of reconstructions", standard: fidelity("standard", "eval_accuracy"), robust: fidelity("robust", "eval_accuracy")))
      findings.append(Finding(dataset: data, finding: "retrieval@10 (chance 0.1)", standard: fidelity("standard", "retrieval"), robust: fidelity("robust", "retrieval"), isFraction: false))
      findings.append(Finding(dataset: data, finding: "noise diversity (same logits, new z)", standard: fidelity("standard", "noise_diversity"), robust: fidelity("robust", "noise_diversity"), isFraction: false))
      for factor in ["object_hue", "centre_x", "size", "background_brightness"] {
        both("factor R² from reconstructions: \(factor)", "factors", isFraction: false) { (($0 as? [String: Any])?["reconstructions"] as? [String: Double])?[factor] }
      }
      // What the logits themselves hold, the ceiling for any inverter: linearly, and to an MLP.
      for factor in ["object_hue", "size"] {
        both("factor R² of a linear probe on the logits: \(factor)", "factors", isFraction: false) { (($0 as? [String: Any])?["logit_probe"] as? [String: Double])?[factor] }
      }
      for factor in ["object_hue", "centre_x", "size"] {
        both("factor R² of an MLP probe on the logits: \(factor)", "factors", isFraction: false) { (($0 as? [String: Any])?["logit_probe_mlp"] as? [String: Double])?[factor] }
      }
      both("adversarial: eval sees the true class", "adversarial") { ($0 as? [String: Any])?["eval_says_true_class"] as? Double }
      both("adversarial: eval sees the adversarial class", "adversarial") { ($0 as? [String: Any])?["eval_says_predicted_class"] as? Double }
      both("misclassified: eval sees the predicted class", "misclassified") { (($0 as? [String: Any])?["misclassified"] as? [String: Any])?["eval_says_predicted_class"] as? Double }
      both("logit noise σ=1: top-1 kept", "logit-noise") { results in
        ((results as? [[String: Any]])?.first { ($0["magnitude"] as? Double) == 1 })?["top1_agreement"] as? Double
      }
    }
  }

  static func format(_ value: Double?, _ spec: String) -> String {
    guard let value else { return "–" }
    return spec.hasSuffix("%%") ? String(format: spec, 100 * value) : String(format: spec, value)
  }

  var text: String {
    var lines: [String] = []
    for data in Set(rows.map(\.dataset)).sorted() {
      lines.append("\(data): every inverter on the same held-out images (eval acc: an independent classifier names the true class)")
      lines.append("  " + "method".padding(toLength: 24, withPad: " ", startingAt: 0) + Self.columns.map { $0.title.leftPadded(10) }.joined())
      for row in rows where row.dataset == data {
        lines.append("  " + row.method.padding(toLength: 24, withPad: " ", startingAt: 0) + Self.columns.map { Self.format(row.values[$0.key], $0.format).leftPadded(10) }.joined())
      }
      lines.append("")
    }
    lines.append("standard vs robust classifier (fidelity inverters):")
    lines.append("  " + "finding".padding(toLength: 68, withPad: " ", startingAt: 0) + "standard".leftPadded(10) + "robust".leftPadded(10))
    for finding in findings {
      let spec = finding.format
      lines.append("  " + "\(finding.dataset): \(finding.finding)".padding(toLength: 68, withPad: " ", startingAt: 0)
                   + Self.format(finding.standard, spec).leftPadded(10) + Self.format(finding.robust, spec).leftPadded(10))
    }
    return lines.joined(separator: "\n")
  }

  var html: String {
    func escape(_ text: String) -> String { text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
    var page = "<section><h2>Headline</h2>\n<p class=\"what\">Each data set's held-out images reconstructed by every shipped inverter and scored the same way. PSNR/SSIM: pixel fidelity; perc. dist: distance in an independent network's features (lower is closer); eval acc: an independently trained classifier names the true class of the reconstruction; retr@10: the reconstruction picks out its own original among 10; top-1 agr: the inverted classifier gives the reconstruction the original's class; noise div: how much the picture changes when only the generator's noise changes; Fréchet: distance between the feature statistics of reconstructions and originals.</p>\n"
    for data in Set(rows.map(\.dataset)).sorted() {
      page += "<h3>\(escape(data))</h3><table><tr><th>method</th>" + Self.columns.map { "<th>\(escape($0.title))</th>" }.joined() + "</tr>\n"
      for row in rows where row.dataset == data {
        page += "<tr><td>\(escape(row.method))</td>" + Self.columns.map { "<td>\(Self.format(row.values[$0.key], $0.format))</td>" }.joined() + "</tr>\n"
      }
      page += "</table>\n"
    }
    page += "<h3>Standard vs robust classifier</h3><table><tr><th>finding</th><th>standard</th><th>robust</th></tr>\n"
    for finding in findings {
      let spec = finding.format
      page += "<tr><td>\(escape(finding.dataset)): \(escape(finding.finding))</td><td>\(Self.format(finding.standard, spec))</td><td>\(Self.format(finding.robust, spec))</td></tr>\n"
    }
    return page + "</table></section>\n"
  }

  /// results.json: the headline tables and every experiment's own results, by folder name.
  func writeResults(to url: URL) throws {
    let object: [String: Any] = [
      "headline": rows.map { ["dataset": $0.dataset, "method": $0.method].merging($0.values.mapValues { $0 as Any }) { a, _ in a } },
      "standard_vs_robust": findings.map { ["dataset": $0.dataset, "finding": $0.finding, "standard": $0.standard.map { $0 as Any } ?? NSNull(), "robust": $0.robust.map { $0 as Any } ?? NSNull()] },
      "experiments": sections,
    ]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    try Safetensors.writeAtomically(data, to: url)
  }
}

extension String {
  func leftPadded(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
