import ArgumentParser

/// The `afterimage` command: thin sub-commands over the Afterimage library.
struct AfterimageCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "afterimage",
    abstract: "Invert image classifiers and measure what their logits remember.",
    subcommands: [Demo.self, Doctor.self, DataCommand.self, ClassifierCommand.self, InverterCommand.self, AnalyzeCommand.self, ReportCommand.self, ModelsCommand.self],
    defaultSubcommand: nil)
}

import Foundation

// Line-buffered standard output, so results and progress (standard error) interleave in order.
setvbuf(stdout, nil, _IOLBF, 0)
AfterimageCommand.main()
