import Foundation

/// One self-contained HTML page (images embedded, curves inline) from the folders that the
/// `analyze` commands wrote, each section saying in a sentence what it measures and what the
/// numbers say, for a reader who has not read the paper.
public enum HTMLReport {
  /// The page for `folders`, each holding `experiment.json`, `results.json` and figures.
  /// `preface` is HTML placed before the sections (the demo's headline tables).
  public static func build(from folders: [URL], title: String = "Afterimage report", preface: String = "") throws -> String {
    var sections = ""
    for folder in folders {
      let stored = try StoredExperiment(folder: folder)
      let result = stored.result
      // The folder's name tells apart sections of one kind (standard vs robust, data sets).
      sections += "<section>\n<h2>\(escape(result.title)) <small>\(escape(folder.lastPathComponent))</small></h2>\n"
      sections += "<p class=\"what\">\(escape(result.measures))</p>\n"
      if let summary = result.summary { sections += "<p class=\"says\"><b>What the numbers say:</b> \(escape(summary))</p>\n" }
      sections += "<p class=\"source\">subject: <code>\(escape(stored.record.subject))</code>, folder <code>\(escape(folder.lastPathComponent))</code></p>\n"
      sections += try table(result.tabulated)
      for name in figureNames(in: folder, extension: "png") {
        let url = folder.appendingPathComponent(name)
        if let data = try? Data(contentsOf: url) {
          sections += "<img alt=\"\(name)\" src=\"data:image/png;base64,\(data.base64EncodedString())\">\n"
        }
      }
      for name in figureNames(in: folder, extension: "svg") {
        if let svg = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) {
          sections += "<div class=\"chart\">\(svg)</div>\n"
        }
      }
      sections += "</section>\n"
    }
    return """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
      <style>
      body { font-family: -apple-system, "Segoe UI", sans-serif; max-width: 1240px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
      .wide { overflow-x: auto; max-width: 100%; } td small { color: #777; white-space: nowrap; }
      .verdicts { table-layout: fixed; width: 100%; } .verdicts td:first-child, .verdicts th:first-child { width: 30%; }
      .verdicts td, .verdicts th { text-align: left; vertical-align: top; } .verdicts td small { white-space: normal; }
      figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; } .verdicts ul { margin: 0.2em 0 0 1em; padding: 0; font-size: 0.85em; color: #555; }
      .holds { color: #0a6b2a; font-weight: bold; } .does-not-hold { color: #a61b1b; font-weight: bold; } .inconclusive { color: #8a6d00; font-weight: bold; } .instrument-not-calibrated { color: #555; font-weight: bold; font-style: italic; } .not-calibrated { color: #a61b1b; }
      .not-measured { color: #888; }
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

  /// A section's figures: `gallery.png`, `figure.png` and `curve.svg`, then a study's per-model
  /// ones (`figure-NAME.png`, `curve-NAME.svg`) in name order.
  static func figureNames(in folder: URL, extension kind: String) -> [String] {
    let fixed = kind == "png" ? ["gallery.png", "figure.png"] : ["curve.svg"]
    let named = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
      .filter { $0.hasPrefix(kind == "png" ? "figure-" : "curve-") && $0.hasSuffix(".\(kind)") }.sorted()
    return fixed + named
  }

  /// An HTML table of `value` encoded: a flat object, an array of flat objects, or an object
  /// of flat objects. It shows whatever the result type encodes, reading no field by name.
  static func table(_ encodable: any Encodable) throws -> String {
    let value = try JSONSerialization.jsonObject(with: JSONEncoder().encode(encodable))
    func number(_ v: Any?) -> String {
      switch v {
      case let d as Double: return abs(d) >= 1000 || d == d.rounded() ? String(format: "%g", d) : String(format: "%.4f", d)
      case let i as Int: return String(i)
      case let s as String: return escape(s)
      case let estimate as [String: Any] where estimate["value"] != nil && estimate["low"] != nil:
        return "\(number(estimate["value"])) <small>[\(number(estimate["low"]))–\(number(estimate["high"]))]</small>"
      case nil: return ""
      default: return ""  // nested arrays and objects are not cells
      }
    }
    /// A value, with its interval when the row's `intervals` (or a `KEY_interval` field) has one.
    func cell(_ row: [String: Any], _ key: String) -> String {
      let interval = (row["intervals"] as? [String: Any])?[key] ?? row["\(key)_interval"]
      guard let bounds = interval as? [String: Any], let low = bounds["low"], let high = bounds["high"] else { return number(row[key]) }
      return "\(number(row[key])) <small>[\(number(low))–\(number(high))]</small>"
    }
    /// Columns a table leaves out: per-image lists and the intervals shown beside their values.
    func shown(_ key: String, in row: [String: Any]) -> Bool {
      !(row[key] is [Any]) && key != "intervals" && key != "per_image" && !key.hasSuffix("_interval")
    }
    func header(_ key: String) -> String { "<th>\(escape(label(key)))</th>" }
    if let rows = value as? [[String: Any]], let first = rows.first {
      // A row's name (or the transformation) leads; the numbers follow alphabetically.
      let leading = ["name", "factor", "transform"].filter { first[$0] != nil }
      let columns = leading + first.keys.filter { !leading.contains($0) && shown($0, in: first) }.sorted { label($0) < label($1) }
      var html = "<div class=\"wide\"><table><tr>" + columns.map(header).joined() + "</tr>\n"
      for row in rows { html += "<tr>" + columns.map { "<td>\(cell(row, $0))</td>" }.joined() + "</tr>\n" }
      return html + "</table></div>\n"
    }
    if let object = value as? [String: Any] {
      let nested = object.compactMapValues { $0 as? [String: Any] }
      if !nested.isEmpty && nested.count == object.count {
        let columns = Set(nested.values.flatMap(\.keys)).sorted()
        let rows = nested.keys.sorted()
        var html = "<div class=\"wide\"><table><tr><th></th>" + rows.map(header).joined() + "</tr>\n"
        for column in columns { html += "<tr><td>\(escape(label(column)))</td>" + rows.map { "<td>\(number(nested[$0]?[column]))</td>" }.joined() + "</tr>\n" }
        return html + "</table></div>\n"
      }
      var html = "<div class=\"wide\"><table>"
      for key in object.keys.sorted() where shown(key, in: object) {
        html += "<tr><td>\(escape(label(key)))</td><td>\(cell(object, key))</td></tr>"
      }
      return html + "</table></div>\n"
    }
    return ""
  }

  /// What a column is called on the page: the JSON key in words.
  static let labels: [String: String] = [
    "psnr": "PSNR (dB)", "ssim": "SSIM", "perceptual_distance": "perceptual distance", "top1_agreement": "top-1 agreement",
    "logit_cosine": "logit cosine", "eval_accuracy": "evaluation accuracy", "eval_accuracy_originals": "evaluation accuracy on originals",
    "retrieval": "retrieval@N", "retrieval_n": "N (retrieval)", "same_class_retrieval": "same-class retrieval@N",
    "noise_diversity": "noise diversity", "frechet_distance": "Fréchet distance", "images_per_second": "images per second",
    "psnr_to_baseline": "PSNR to unchanged (dB)", "perceptual_change": "perceptual change", "magnitude": "magnitude",
    "equivariance_error": "equivariance error", "change": "change", "followed": "change − equivariance error",
    "eval_says_true_class": "evaluation sees the true class", "eval_says_predicted_class": "evaluation sees the predicted class",
    "p_class_a": "P(class of A)", "p_class_b": "P(class of B)", "alpha": "α", "logit_probe": "linear probe on logits",
    "logit_probe_mlp": "MLP probe on logits", "reconstructions": "from reconstructions", "originals": "from originals (ceiling)",
    "efficiency": "recovery efficiency", "count": "images", "name": "method", "transform": "transformation",
  ]

  static func label(_ key: String) -> String { labels[key] ?? key.replacingOccurrences(of: "_", with: " ") }

  static func escape(_ text: String) -> String { HTML.escape(text) }
}

/// Text made safe for HTML and SVG, in element content and in quoted attributes alike.
public enum HTML {
  public static func escape(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count)
    for character in text {
      switch character {
      case "&": escaped += "&amp;"
      case "<": escaped += "&lt;"
      case ">": escaped += "&gt;"
      case "\"": escaped += "&quot;"
      case "'": escaped += "&#39;"
      default: escaped.append(character)
      }
    }
    return escaped
  }
}
