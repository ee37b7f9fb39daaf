import Foundation

/// A progress display for long work: a redrawn bar with rate and ETA on a terminal, or a plain
/// line every few seconds when standard error is a file or pipe (logs, CI).
public final class ProgressBar {
  public let total: Int
  public let label: String
  let unit: String
  let isTerminal: Bool
  let start = Date()
  var lastPrint = Date.distantPast
  var startCount = 0

  /// - Parameters:
  ///   - total: the count at which the work is done.
  ///   - unit: what `rate` counts per second (e.g. "img").
  public init(total: Int, label: String, unit: String = "it", startingAt count: Int = 0) {
    self.total = max(total, 1)
    self.label = label
    self.unit = unit
    self.startCount = count
    isTerminal = isatty(STDERR_FILENO) == 1
  }

  /// Shows progress at `count` with metrics such as `["loss": "0.52"]`, and `items` processed
  /// so far in this session (for the rate).
  public func update(_ count: Int, items: Int? = nil, metrics: KeyValuePairs<String, String> = [:]) {
    let now = Date()
    let finished = count >= total
    guard finished || now.timeIntervalSince(lastPrint) >= (isTerminal ? 0.2 : 10) else { return }
    lastPrint = now
    let elapsed = now.timeIntervalSince(start)
    let done = Double(count - startCount)
    let rate = elapsed > 0 ? Double(items ?? (count - startCount)) / elapsed : 0
    let remaining = done > 0 ? elapsed / done * Double(total - count) : 0
    let fraction = Double(count) / Double(total)
    let shown = metrics.map { "\($0.key) \($0.value)" }.joined(separator: "  ")
    let text = String(format: "%@ %d/%d  %@  %.0f %@/s  %@ %@", label, count, total, shown, rate, unit,
                      finished ? "took" : "ETA", Self.clock(finished ? elapsed : remaining))
    if isTerminal {
      let width = 24
      let filled = Int(fraction * Double(width))
      let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
      FileHandle.standardError.write(Data("\r\u{1B}[K\(bar) \(text)\(finished ? "\n" : "")".utf8))
    } else {
      FileHandle.standardError.write(Data("[\(Int(fraction * 100))%] \(text)\n".utf8))
    }
  }

  /// `h:mm:ss` or `m:ss`.
  public static func clock(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
  }
}

/// Notices Ctrl-C (SIGINT) and SIGTERM so that a training loop can checkpoint and stop cleanly.
///
/// The first signal asks the loop to stop after its current step and save a checkpoint. A
/// second one (Ctrl-C or SIGTERM, in any order) ends the process at once: a step that never
/// finishes (a stuck kernel, a peer that never answers) must not make the process unkillable
/// but for SIGKILL. Ending at once loses nothing written: checkpoints are replaced atomically
/// (RunDirectory.writeCheckpoint), so the last one stays as it was, as after `kill -9`.
public enum Interruption {
  nonisolated(unsafe) private static var flag: sig_atomic_t = 0

  /// Installs the handlers for a training loop. A stop requested earlier in the process stays
  /// requested (a second run under `models train` does not wipe it).
  public static func install() {
    signal(SIGINT) { number in Interruption.handle(number) }
    signal(SIGTERM) { number in Interruption.handle(number) }
  }

  /// Runs inside the signal handler: only async-signal-safe calls (write, _exit) and static
  /// strings, which allocate nothing. The second signal's exit status is 128 + its number, as
  /// a shell reports a process that signal killed.
  private static func handle(_ number: Int32) {
    if flag != 0 {
      let message: StaticString =
        "\nafterimage: second stop signal: ending at once. The last checkpoint is intact; continue with --resume.\n"
      _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
      _exit(128 + number)
    }
    flag = 1
    let message: StaticString =
      "\nafterimage: stopping after this step and saving a checkpoint (Ctrl-C again, or a second SIGTERM, ends at once)\n"
    _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
  }

  /// Restores the default handlers once the loop has stopped, so a Ctrl-C during what follows
  /// (the final evaluation) stops the process at once instead of being ignored.
  public static func uninstall() {
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
  }

  /// Whether a stop was requested.
  public static var requested: Bool { flag != 0 }
}

/// Items per second between two logged steps (metrics.jsonl's `images_per_second`).
struct Throughput {
  private var since = Date()
  private var items = 0

  mutating func add(_ count: Int) { items += count }

  /// The rate since the last call (or since creation), and starts a new interval.
  mutating func take() -> Double {
    let now = Date()
    let rate = Double(items) / max(now.timeIntervalSince(since), 1e-9)
    (since, items) = (now, 0)
    return rate
  }
}
