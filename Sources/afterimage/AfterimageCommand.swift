import ArgumentParser
import Foundation

/// The `afterimage` command: thin sub-commands over the Afterimage library.
@main
struct AfterimageCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "afterimage",
    abstract: "Invert image classifiers and measure what their logits remember.",
    subcommands: [Demo.self, Doctor.self, DataCommand.self, ClassifierCommand.self, InverterCommand.self, AnalyzeCommand.self, StudyCommand.self, Explore.self, ReportCommand.self, ModelsCommand.self, TensorBoardCommand.self, DistributedCommand.self],
    defaultSubcommand: nil)

  /// The asynchronous entry point, which `explore` (a server) needs.
  static func main() async {
    // Line-buffered standard output, so results and progress (standard error) interleave in order.
    setvbuf(stdout, nil, _IOLBF, 0)
    await main(nil)
  }
}
