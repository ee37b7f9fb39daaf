import Afterimage
import ArgumentParser
import Foundation

/// `afterimage tensorboard RUN…`: the TensorBoard log of runs trained without one.
struct TensorBoardCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tensorboard",
    abstract: "Write the TensorBoard log (events.out.tfevents.afterimage) of runs trained without one, from their metrics.jsonl, sample grids and config; then `tensorboard --logdir` reads them.")

  @Argument(help: "Run folders (classifier or inverter runs).") var runs: [String]

  func validate() throws { try require(!runs.isEmpty, "give at least one run folder") }

  func run() throws {
    for path in runs {
      let run = RunDirectory(path)
      let (scalars, images) = try TensorBoardLog.export(run)
      print("wrote \(run.tensorBoard.url.path): \(scalars) logged steps, \(images) sample grids")
    }
  }
}
