import Afterimage
import ArgumentParser
import Foundation
import Torch

/// `afterimage report`: one HTML page from the folders `analyze` wrote.
struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report", abstract: "Build one self-contained HTML page (images embedded) from analysis folders.")

  @Option(name: .customLong("from"), parsing: .upToNextOption, help: "Folders written by `afterimage analyze …`.")
  var folders: [String]
  @Option(help: "Page title.") var title = "Afterimage report"
  @Option(help: "The HTML file to write.") var out = "report.html"

  func validate() throws { try require(!folders.isEmpty, "--from needs at least one analysis folder") }

  func run() throws {
    let page = try HTMLReport.build(from: folders.map { URL(fileURLWithPath: $0) }, title: title)
    try FileSystem.writeAtomically(Data(page.utf8), to: URL(fileURLWithPath: out))
    print("wrote \(out) (\(page.utf8.count / 1024) KiB, \(folders.count) section(s))")
  }
}
