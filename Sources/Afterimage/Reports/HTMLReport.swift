import Foundation

/// One self-contained HTML page (images embedded, curves inline) from the folders that the
/// `analyze` commands wrote, each section saying in a sentence what it measures and what the
/// numbers say, for a reader who has not read the paper.
public enum HTMLReport {
  /// What each experiment measures, in one sentence.
  static let explanations: [String: (title: String, measures: String)] = [
    "reconstruct": ("Reconstruction fidelity", "Held-out images are turned into logits by the classifier and back into images by the inverter; the numbers say how much of each original comes back (PSNR and SSIM on pixels, a perceptual distance, whether the classifier and an independent classifier still see the class, and whether a reconstruction picks out its own original among N)."),
    "factors": ("What survives in the logits (Shapes factors)", "Every Shapes image was drawn with known nuisance factors; a regressor trained on clean images reads each factor off the reconstructions (R² 1: fully recovered, 0: lost), beside the same regressor on the originals (the ceiling) and two probes on the logits themselves: linear, and a small MLP, which also reads what the logits hold nonlinearly, as an inverter can."),
    "noise": ("Noise resampling", "The logits are held fixed and the generator's noise is resampled; the distance between the resulting pictures is what the logits leave undetermined."),
    "logit-shift": ("Adding a constant to the logits", "Adding the same number to every logit leaves the softmax unchanged; any change in the picture shows the inverter reads the logits' absolute values."),
    "logit-scale": ("Scaling the logits", "Multiplying the logits (a temperature change) and reconstructing shows what the logits' magnitude encodes."),
    "logit-noise": ("Noise on the logits", "Gaussian noise is added to the logits; how fast the picture and its class drift shows how much of the logit vector carries content."),
    "logit-topk": ("Keeping only the top logits", "All but the k largest logits are flattened; the drop in fidelity shows how much information lives in the small logits."),
    "interpolate": ("Interpolating between two images' logits", "Reconstructions along the line between two images' logits, and the independent classifier's belief in either class along the way."),
    "misclassified": ("Misclassified images", "For images the classifier gets wrong, does the independent classifier see the true class or the wrongly predicted one in the reconstruction?"),
    "adversarial": ("Adversarial examples", "Reconstructions from the logits of PGD adversarial examples: does the independent classifier see the true class or the adversarial one?"),
    "compare": ("Side by side", "The same held-out images reconstructed by several inverters (and optimisation-based inversion), scored with the same metrics; rows of the figure follow the table's order."),
    "transforms": ("Image transformations", "For each transformation T, the equivariance error d(G(Φ(Tx)), T·G(Φ(x))) is small when the logits carry T; the change d(G(Φ(Tx)), G(Φ(x))) is small when the classifier ignores it."),
  ]

  /// The page for `folders`, each holding `experiment.json`, `results.json` and figures.
  /// `preface` is HTML placed before the sections (the demo's headline tables).
  public static func build(from folders: [URL], title: String = "Afterimage report", preface: String = "") throws -> String {
    var sections = ""
    for folder in folders {
      let record = try json(folder.appendingPathComponent("experiment.json")) as? [String: Any] ?? [:]
      guard let kind = record["experiment"] as? String else {
        throw RunError("\(folder.path) has no experiment.json: give folders written by `afterimage analyze …`")
      }
      let results = try json(folder.appendingPathComponent("results.json"))
      let (heading, measures) = explanations[kind] ?? (kind, "")
      // The folder's name tells apart sections of one kind (standard vs robust, data sets).
      sections += "<section>\n<h2>\(escape(heading)) <small>\(escape(folder.lastPathComponent))</small></h2>\n"
      sections += "<p class=\"what\">\(escape(measures))</p>\n"
      if let summary = summary(kind: kind, results: results) { sections += "<p class=\"says\"><b>What the numbers say:</b> \(escape(summary))</p>\n" }
      sections += "<p class=\"source\">inverter: <code>\(escape(record["inverter"] as? String ?? "?"))</code>, folder <code>\(escape(folder.lastPathComponent))</code></p>\n"
      sections += table(results)
      for name in ["gallery.png", "figure.png"] {
        let url = folder.appendingPathComponent(name)
        if let data = try? Data(contentsOf: url) {
          sections += "<img alt=\"\(name)\" src=\"data:image/png;base64,\(data.base64EncodedString())\">\n"
        }
      }
      if let svg = try? String(contentsOf: folder.appendingPathComponent("curve.svg"), encoding: .utf8) {
        sections += "<div class=\"chart\">\(svg)</div>\n"
      }
      sections += "</section>\n"
    }
    return """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
      <style>
      body { font-family: -apple-system, "Segoe UI", sans-serif; max-width: 980px; margin: 2em auto; color: #222; line-height: 1.45; }
      h1 { border-bottom: 2px solid #333; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h2 small { color: #777; font-weight: normal; }
      table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
      td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
      td:first-child, th:first-child { text-align: left; }
      .what { color: #444; } .says { background: #f6f8ff; padding: 0.5em; } .source { color: #888; font-size: 0.85em; }
      img { image-rendering: pixelated; max-width: 100%; display: block; margin: 0.5em 0; }
      </style></head><body>
      <h1>\(escape(title))</h1>
      <p>Afterimage inverts a classifier: a generator turns the classifier's logits back into an image. Whatever the
      reconstruction shows beyond the class must have survived in the logits. Each section below is one experiment.</p>
      \(preface)
      \(sections)
      </body></html>

      """
  }

  /// A one-sentence reading of the numbers, for the experiments that have a headline.
  static func summary(kind: String, results: Any) -> String? {
    let object = results as? [String: Any]
    func number(_ key: String) -> Double? { object?[key] as? Double }
    switch kind {
    case "reconstruct":
      guard let accuracy = number("eval_accuracy"), let originals = number("eval_accuracy_originals"), let retrieval = number("retrieval"),
        let n = object?["retrieval_n"] as? Int, let psnr = number("psnr")
      else { return nil }
      return String(format: "The independent classifier names the true class of %.0f%% of reconstructions (%.0f%% of originals); a reconstruction finds its own original among %d candidates %.0f%% of the time (chance %.0f%%); PSNR %.1f dB.",
                    100 * accuracy, 100 * originals, n, 100 * retrieval, 100 / Double(n), psnr)
    case "factors":
      guard let recovered = object?["reconstructions"] as? [String: Double], let probe = object?["logit_probe"] as? [String: Double] else { return nil }
      let best = recovered.max { $0.value < $1.value }
      func present(_ probe: [String: Double]) -> String {
        let names = probe.filter { $0.value > 0.3 }.keys.sorted()
        return names.isEmpty ? "none" : names.joined(separator: ", ")
      }
      var text = "Best-recovered factor: \(best?.key ?? "none") (R² \(String(format: "%.2f", best?.value ?? 0))). Linearly present in the logits (R² > 0.3): \(present(probe))."
      if let mlp = object?["logit_probe_mlp"] as? [String: Double] { text += " Present to an MLP probe: \(present(mlp))." }
      return text
    case "noise":
      guard let diversity = number("noise_diversity") else { return nil }
      return String(format: "Reconstructions of the same logits differ by a mean perceptual distance of %.3f.", diversity)
    case "adversarial":
      guard let truth = number("eval_says_true_class"), let predicted = number("eval_says_predicted_class") else { return nil }
      let fooled = number("attack_success").map { String(format: "The attack fooled the classifier on %.0f%% of the images. ", 100 * $0) } ?? ""
      return fooled + String(format: "On reconstructions of adversarial logits the independent classifier sees the true class %.0f%% of the time and the adversarial class %.0f%%.", 100 * truth, 100 * predicted)
    case "misclassified":
      guard let wrong = object?["misclassified"] as? [String: Any], let truth = wrong["eval_says_true_class"] as? Double,
        let predicted = wrong["eval_says_predicted_class"] as? Double
      else { return "No misclassified images among those scored." }
      return String(format: "For misclassified images, the independent classifier sees the true class in %.0f%% of reconstructions and the wrongly predicted class in %.0f%%.", 100 * truth, 100 * predicted)
    default:
      return nil
    }
  }

  static func json(_ url: URL) throws -> Any {
    guard let data = try? Data(contentsOf: url) else { throw RunError("cannot read \(url.path)") }
    return try JSONSerialization.jsonObject(with: data)
  }

  /// An HTML table for a flat object, an array of flat objects, or an object of flat objects.
  static func table(_ value: Any) -> String {
    func cell(_ v: Any?) -> String {
      switch v {
      case let d as Double: return abs(d) >= 1000 || d == d.rounded() ? String(format: "%g", d) : String(format: "%.4f", d)
      case let i as Int: return String(i)
      case let s as String: return escape(s)
      case nil: return ""
      default: return escape("\(v!)")
      }
    }
    if let rows = value as? [[String: Any]], let first = rows.first {
      // A row's name (or the transformation) leads; the numbers follow alphabetically.
      let leading = ["name", "transform"].filter { first[$0] != nil }
      let columns = leading + first.keys.filter { !leading.contains($0) }.sorted()
      var html = "<table><tr>" + columns.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
      for row in rows { html += "<tr>" + columns.map { "<td>\(cell(row[$0]))</td>" }.joined() + "</tr>\n" }
      return html + "</table>\n"
    }
    if let object = value as? [String: Any] {
      let nested = object.compactMapValues { $0 as? [String: Any] }
      if !nested.isEmpty && nested.count == object.count {
        let columns = Set(nested.values.flatMap(\.keys)).sorted()
        let rows = nested.keys.sorted()
        var html = "<table><tr><th></th>" + rows.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for column in columns { html += "<tr><td>\(escape(column))</td>" + rows.map { "<td>\(cell(nested[$0]?[column]))</td>" }.joined() + "</tr>\n" }
        return html + "</table>\n"
      }
      var html = "<table>"
      for key in object.keys.sorted() { html += "<tr><td>\(escape(key))</td><td>\(cell(object[key]))</td></tr>" }
      return html + "</table>\n"
    }
    return ""
  }

  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
