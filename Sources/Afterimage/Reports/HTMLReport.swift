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
      sections += "<p class=\"source\">inverter: <code>\(escape(stored.record.inverter))</code>, folder <code>\(escape(folder.lastPathComponent))</code></p>\n"
      sections += try table(result.tabulated)
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

  /// An HTML table of `value` encoded: a flat object, an array of flat objects, or an object
  /// of flat objects. It shows whatever the result type encodes, reading no field by name.
  static func table(_ encodable: any Encodable) throws -> String {
    let value = try JSONSerialization.jsonObject(with: JSONEncoder().encode(encodable))
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
