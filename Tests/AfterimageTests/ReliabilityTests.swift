import Foundation
import TestSupport
import XCTest

@testable import Afterimage
@testable import Torch

/// What a user or a crash can do must not lose work or give a wrong answer silently: runs are
/// not overwritten, diverged weights are never saved or loaded as good, interrupted writes leave
/// no litter, and file-system failures say which path and why.
final class ReliabilityTests: XCTestCase {
  /// Runs `afterimage arguments…` in `directory`: exit status and all output; never a crash.
  func afterimage(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
    let (status, output) = try runAfterimage(arguments, in: directory)
    XCTAssertFalse(output.contains("Fatal error") || output.contains("Backtrac"), "afterimage \(arguments.joined(separator: " ")) crashed:\n\(output)")
    return (status, output)
  }

  static let tinyClassifier = [
    "classifier", "train", "--dataset", "shapes:train=64,test=32", "--arch", "evalnet", "--width", "0.25", "--epochs", "1",
    "--batch-size", "32", "--warmup-steps", "1",
  ]

  func testTrainingNeverOverwritesARunWithoutForce() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let model = root.appendingPathComponent("c/model.safetensors")
    let before = try Data(contentsOf: model)
    // The shipped runs have no checkpoint: that used to be enough to overwrite them.
    try FileManager.default.removeItem(at: root.appendingPathComponent("c/checkpoint.safetensors"))
    let refused = try afterimage(Self.tinyClassifier + ["--out", "c", "--seed", "3"], in: root)
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.output.contains("already holds a run") && refused.output.contains("--force"), refused.output)
    XCTAssertEqual(try Data(contentsOf: model), before, "the run is untouched")
    let inverter = ["inverter", "train", "--classifier", "c", "--steps", "2", "--batch-size", "4", "--ch", "4", "--noise-size", "16", "--no-attention",
                    "--train-count", "16", "--sample-every", "1"]
    XCTAssertEqual(try afterimage(inverter + ["--out", "i"], in: root).status, 0)
    try FileManager.default.removeItem(at: root.appendingPathComponent("i/checkpoint.safetensors"))
    XCTAssertTrue(try afterimage(inverter + ["--out", "i"], in: root).output.contains("already holds a run"))
    try Data("stale".utf8).write(to: root.appendingPathComponent("i/samples/step-999.png"))
    let replaced = try afterimage(inverter + ["--out", "i", "--force"], in: root)
    XCTAssertEqual(replaced.status, 0, replaced.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("i/samples/step-999.png").path), "old samples do not mix with new ones")
    XCTAssertTrue(try afterimage(inverter + ["--out", "i", "--force", "--resume"], in: root).output.contains("give one"))
    try Data().write(to: root.appendingPathComponent("a-file"))
    XCTAssertTrue(try afterimage(Self.tinyClassifier + ["--out", "a-file"], in: root).output.contains("is a file, not a folder"))
    XCTAssertTrue(try afterimage(Self.tinyClassifier + ["--out", "x", "--lr", "inf"], in: root).output.contains("--lr must be a positive finite number"))
    XCTAssertTrue(try afterimage(inverter + ["--out", "j", "--g-lr", "inf"], in: root).output.contains("positive finite numbers"))
    XCTAssertTrue(try afterimage(inverter + ["--out", "j", "--l1-weight", "inf"], in: root).output.contains("loss weights must be finite"))
  }

  func testDivergedTrainingStopsWithATrueMessageAndSavesNothing() throws {
    let root = try temporaryDirectory()
    let outcome = try afterimage(Self.tinyClassifier + ["--out", "c", "--lr", "1e9"], in: root)
    XCTAssertNotEqual(outcome.status, 0)
    XCTAssertTrue(outcome.output.contains("training diverged"), outcome.output)
    XCTAssertTrue(outcome.output.contains("no checkpoint was written yet"), outcome.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("c/model.safetensors").path))
    // The inverter at --g-lr 1e9 used to exit 0 with infinite batch-norm statistics in its model.
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "good"], in: root).status, 0)
    let inverter = try afterimage(["inverter", "train", "--classifier", "good", "--out", "i", "--g-lr", "1e9", "--d-lr", "1e9", "--steps", "20",
                                   "--batch-size", "4", "--ch", "4", "--noise-size", "16", "--no-attention", "--train-count", "16"], in: root)
    XCTAssertNotEqual(inverter.status, 0)
    XCTAssertTrue(inverter.output.contains("training diverged") && inverter.output.contains("nothing is kept"), inverter.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("i/model.safetensors").path))
  }

  func testWeightsWithNaNAreNeitherSavedNorLoaded() throws {
    let layer = Linear(3, 2)
    let folder = try temporaryDirectory()
    let url = folder.appendingPathComponent("w.safetensors")
    try layer.saveWeights(to: url)
    withNoGrad { layer.weight.copy(from: Tensor([Float.nan, 0, 0, 0, 0, 0], shape: [2, 3])) }
    XCTAssertThrowsError(try layer.saveWeights(to: folder.appendingPathComponent("bad.safetensors"))) {
      XCTAssertTrue("\($0)".contains("weight hold NaN or infinite values"), "\($0)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("bad.safetensors").path))
    try Safetensors.write(layer.stateDict(), to: url)  // as a diverged run of an older build wrote them
    XCTAssertThrowsError(try Linear(3, 2).loadWeights(from: url)) { XCTAssertTrue("\($0)".contains("NaN or infinite"), "\($0)") }
  }

  func testInterruptedWritesLeaveNoLitterAndFileErrorsSayWhy() throws {
    let folder = try temporaryDirectory()
    let target = folder.appendingPathComponent("checkpoint.safetensors")
    // A writer killed mid-write leaves its temporary file; a pid that cannot exist stands for it.
    let dead = Safetensors.temporaryURL(of: target, pid: Int32.max)
    let live = Safetensors.temporaryURL(of: target, pid: 1)  // init is alive: another writer's file is kept
    try Data(repeating: 7, count: 1000).write(to: dead)
    try Data(repeating: 7, count: 10).write(to: live)
    try Safetensors.writeAtomically(Data("new".utf8), to: target)
    XCTAssertEqual(try String(contentsOf: target, encoding: .utf8), "new")
    XCTAssertFalse(FileManager.default.fileExists(atPath: dead.path), "a dead writer's temporary file is removed")
    XCTAssertTrue(FileManager.default.fileExists(atPath: live.path), "a live writer's is not")
    // A path whose folder is a file: the message names the path and the cause, no NSError dump.
    try Data().write(to: folder.appendingPathComponent("plain"))
    XCTAssertThrowsError(try Safetensors.writeAtomically(Data(), to: folder.appendingPathComponent("plain/x.json"))) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains(folder.appendingPathComponent("plain").path), message)
      XCTAssertFalse(message.contains("Code=") || message.contains("NSCocoaErrorDomain"), message)
    }
    XCTAssertEqual(FileErrors.describe(NSError(domain: NSCocoaErrorDomain, code: NSFileWriteOutOfSpaceError)), String(cString: strerror(ENOSPC)))
    let wrapped = NSError(domain: NSCocoaErrorDomain, code: 512, userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(EROFS))])
    XCTAssertEqual(FileErrors.describe(wrapped), String(cString: strerror(EROFS)))
  }

  func testAnInverterRefusesAClassifierItWasNotTrainedOn() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "models/c"], in: root).status, 0)
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "other", "--seed", "5"], in: root).status, 0)
    let project = root.appendingPathComponent("project")
    try FileManager.default.createDirectory(at: project, withIntermediateDirectories: true)
    try FileManager.default.moveItem(at: root.appendingPathComponent("models"), to: project.appendingPathComponent("models"))
    let train = ["inverter", "train", "--classifier", "models/c", "--steps", "2", "--batch-size", "4", "--ch", "4", "--noise-size", "16",
                 "--no-attention", "--train-count", "16", "--checkpoint-every", "1"]
    XCTAssertEqual(try afterimage(train + ["--out", "models/i", "--steps", "1"], in: project).status, 0)
    let reconstruct = ["inverter", "reconstruct", "--inverter", "project/models/i", "--count", "2", "--out", "r.png"]
    // Run from elsewhere, the recorded `models/c` is found from the run directory, not from a
    // `models/c` that happens to be in the working directory (here: another classifier).
    try FileManager.default.createDirectory(at: root.appendingPathComponent("models"), withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: root.appendingPathComponent("other"), to: root.appendingPathComponent("models/c"))
    let fromElsewhere = try afterimage(reconstruct, in: root)
    XCTAssertEqual(fromElsewhere.status, 0, fromElsewhere.output)
    // The same class count, other weights: refused, unless asked for.
    let swapped = try afterimage(reconstruct + ["--classifier", "other"], in: root)
    XCTAssertNotEqual(swapped.status, 0)
    XCTAssertTrue(swapped.output.contains("is not the one the inverter") && swapped.output.contains("--allow-mismatch"), swapped.output)
    XCTAssertEqual(try afterimage(reconstruct + ["--classifier", "other", "--allow-mismatch"], in: root).status, 0)
    // Resuming with another classifier would train on its logits under the old one's name.
    let resumed = try afterimage(train + ["--out", "models/i", "--resume", "--classifier", "../other"], in: project)
    XCTAssertNotEqual(resumed.status, 0)
    XCTAssertTrue(resumed.output.contains("was started with another classifier"), resumed.output)
  }

  func testAnInverterRefusesDataAndAPerceptualNetworkThatChangedUnderTheSameName() throws {
    let root = try temporaryDirectory()
    // A folder data set (every tenth file is held out) the classifier and inverter are trained on.
    for label in ["a", "b"] {
      let folder = root.appendingPathComponent("pictures/\(label)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      for index in 0..<20 { try PNG.write(Tensor.rand([3, 32, 32]), to: folder.appendingPathComponent("\(index).png")) }
    }
    let classifier = ["classifier", "train", "--dataset", "folder:pictures", "--arch", "evalnet", "--width", "0.25", "--epochs", "1",
                      "--batch-size", "8", "--warmup-steps", "1"]
    XCTAssertEqual(try afterimage(classifier + ["--out", "c"], in: root).status, 0)
    XCTAssertEqual(try afterimage(classifier + ["--out", "p", "--seed", "4"], in: root).status, 0)
    let train = ["inverter", "train", "--classifier", "c", "--out", "i", "--steps", "2", "--batch-size", "4", "--ch", "4", "--noise-size", "16",
                 "--no-attention", "--checkpoint-every", "1", "--preset", "fidelity", "--perceptual-network", "p"]
    let first = try afterimage(train, in: root)
    XCTAssertEqual(first.status, 0, first.output)
    let config = try RunDirectory(url: root.appendingPathComponent("i")).readJSON(InverterConfig.self, from: root.appendingPathComponent("i/config.json"))
    XCTAssertEqual(config.data?.train.count, 36)
    XCTAssertEqual(config.data?.test.count, 4)
    XCTAssertNotNil(config.perceptualDigest)
    // Another perceptual network under the recorded path: the resume is refused.
    let original = root.appendingPathComponent("p-original")
    try FileManager.default.moveItem(at: root.appendingPathComponent("p"), to: original)
    try FileManager.default.copyItem(at: root.appendingPathComponent("c"), to: root.appendingPathComponent("p"))
    let otherNetwork = try afterimage(train + ["--resume"], in: root)
    XCTAssertNotEqual(otherNetwork.status, 0)
    XCTAssertTrue(otherNetwork.output.contains("another perceptual network"), otherNetwork.output)
    try FileManager.default.removeItem(at: root.appendingPathComponent("p"))
    try FileManager.default.moveItem(at: original, to: root.appendingPathComponent("p"))
    XCTAssertEqual(try afterimage(train + ["--resume"], in: root).status, 0)
    // One held-out picture repainted (every tenth file by name is held out: 18.png and 9.png of
    // each class): the same name, other data.
    try PNG.write(Tensor.zeros([3, 32, 32]), to: root.appendingPathComponent("pictures/b/9.png"))
    let reconstruct = ["inverter", "reconstruct", "--inverter", "i", "--count", "2", "--out", "r.png"]
    let refused = try afterimage(reconstruct, in: root)
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.output.contains("the test split of folder:pictures has changed") && refused.output.contains("--allow-mismatch"), refused.output)
    XCTAssertEqual(try afterimage(reconstruct + ["--allow-mismatch"], in: root).status, 0)
    let analyzed = try afterimage(["analyze", "noise", "--inverter", "i", "--evaluation", "p", "--count", "2", "--out", "s"], in: root)
    XCTAssertTrue(analyzed.output.contains("has changed since"), analyzed.output)
    // A training picture added: the train split no longer has 36 examples, and a resume says so.
    try PNG.write(Tensor.rand([3, 32, 32]), to: root.appendingPathComponent("pictures/a/20.png"))
    let resumed = try afterimage(train + ["--resume"], in: root)
    XCTAssertTrue(resumed.output.contains("was started on other data") && resumed.output.contains("it has 37 examples, and had 36"), resumed.output)
  }

  func testRequestsThatWouldExhaustMemoryAreRefusedBeforeTheyAllocate() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let train = ["inverter", "train", "--classifier", "c", "--out", "i", "--steps", "1", "--batch-size", "4", "--ch", "4", "--noise-size", "16",
                 "--no-attention", "--train-count", "16"]
    XCTAssertEqual(try afterimage(train, in: root).status, 0)
    // A million originals, 16 reconstructions each (the test split has 32): 32 rows of 17 tiles.
    let grid = try afterimage(["inverter", "reconstruct", "--inverter", "i", "--count", "1000000", "--samples", "16", "--out", "r.png"], in: root)
    XCTAssertEqual(grid.status, 0, "32 rows fit: \(grid.output)")
    let huge = try afterimage(["data", "preview", "--dataset", "shapes:train=64,test=32", "--count", "64", "--scale", "32", "--columns", "1", "--out", "p.png"], in: root)
    XCTAssertNotEqual(huge.status, 0)
    XCTAssertTrue(huge.output.contains("over the 64 million one grid may have") && huge.output.contains("rows fit"), huge.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("p.png").path))
    XCTAssertThrowsError(try ResourceLimits.checkGrid(count: 1_000_000 * 17, columns: 17, side: 32, scale: 3, fix: "use --count")) {
      XCTAssertTrue("\($0)".contains("use --count"), "\($0)")
    }
    // Scoring a million images together: n² distances alone are 4 TB.
    XCTAssertThrowsError(try ResourceLimits.checkScoring(count: 1_000_000, channels: 3, side: 32, copies: 4, pairwise: 3, fix: "use --count")) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains("needs about") && message.contains("use --count") && message.contains(" fit)"), message)
    }
    XCTAssertNoThrow(try ResourceLimits.checkScoring(count: 1000, channels: 3, side: 32, copies: 4, pairwise: 3, fix: "use --count"))
    // An imported model of 100000² inputs would be probed with 5 of them (600 GB).
    let input = try afterimage(["classifier", "import", "--torchscript", "m.pt", "--input", "3x100000x100000", "--classes", "10", "--out", "m"], in: root)
    XCTAssertTrue(input.output.contains("8 to 1024 pixels square"), input.output)
    // A gzip file that inflates past the limit (here 1 MB of zeros against a 100 kB limit).
    let zeros = try runPythonCode("import gzip, sys; sys.stdout.buffer.write(gzip.compress(bytes(1_000_000)).hex().encode())")
    let bytes = Data(stride(from: 0, to: zeros.count - 1, by: 2).map { UInt8(zeros.dropFirst($0).prefix(2), radix: 16)! })
    XCTAssertThrowsError(try gunzip(bytes, limit: 100_000)) { XCTAssertTrue("\($0)".contains("inflates to more than"), "\($0)") }
    XCTAssertEqual(try gunzip(bytes).count, 1_000_000)
  }

  /// Mounts a `megabytes` tmpfs at `folder` (root only; false where mounting is not allowed, as in
  /// unprivileged containers, or when AFTERIMAGE_TEST_NO_MOUNT is set to try the other path) and
  /// unmounts it when the test ends.
  func smallFilesystem(at folder: URL, megabytes: Int) throws -> Bool {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let mount = Process()
    mount.executableURL = URL(fileURLWithPath: "/bin/mount")
    mount.arguments = ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", folder.path]
    mount.standardError = FileHandle.nullDevice
    guard getuid() == 0, ProcessInfo.processInfo.environment["AFTERIMAGE_TEST_NO_MOUNT"] == nil, let started = try? mount.run(deadline: 60) else { return false }
    try started.wait()
    guard mount.terminationStatus == 0 else { return false }
    addTeardownBlock { _ = try? Self.command("/bin/umount", ["-l", folder.path]) }
    return true
  }

  @discardableResult
  static func command(_ path: String, _ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardError = FileHandle.nullDevice  // dd's "No space left on device" is the point
    try process.run(deadline: 60).wait()
    return process.terminationStatus
  }

  func testAFullOrReadOnlyDiskFailsClearlyAndKeepsTheLastCheckpoint() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let disk = root.appendingPathComponent("disk")
    let run = disk.appendingPathComponent("i")
    let train = ["inverter", "train", "--classifier", "c", "--out", "disk/i", "--steps", "400", "--batch-size", "4", "--ch", "4", "--noise-size", "16",
                 "--no-attention", "--train-count", "16", "--checkpoint-every", "5", "--sample-every", "5"]
    // Without mount rights the run goes on the ordinary disk, and a write limit is injected below.
    let mounted = try smallFilesystem(at: disk, megabytes: 32)
    // A run under way, stopped with Ctrl-C after a few checkpoints.
    let process = afterimageProcess(train, in: root)
    let deadline = try process.run(deadline: 300)
    for _ in 0..<600 where process.isRunning && ((try? RunDirectory(url: run).readCheckpoint(kind: "inverter").step) ?? 0) < 10 { usleep(50_000) }
    kill(process.processIdentifier, SIGINT)
    try deadline.wait()
    XCTAssertEqual(process.terminationStatus, 130)
    let before = try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors"))
    let metricsBefore = try Data(contentsOf: run.appendingPathComponent("metrics.jsonl"))
    let more = train + ["--resume"]
    func checkKept(_ outcome: (status: Int32, output: String), cause: String) throws {
      XCTAssertNotEqual(outcome.status, 0)
      XCTAssertTrue(outcome.output.contains(run.path) || outcome.output.contains("disk/i"), "the message names the path: \(outcome.output)")
      XCTAssertTrue(outcome.output.contains(cause), "the message says why (\(cause)): \(outcome.output)")
      XCTAssertFalse(outcome.output.contains("Code=") || outcome.output.contains("NSCocoaErrorDomain"), outcome.output)
      XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors")), before, "the last checkpoint is the one before")
      XCTAssertNoThrow(try RunDirectory(url: run).readCheckpoint(kind: "inverter"))
      let metrics = try Data(contentsOf: run.appendingPathComponent("metrics.jsonl"))
      XCTAssertTrue(metrics.starts(with: metricsBefore.prefix(metrics.count)) && metrics.count >= metricsBefore.count, "metrics are kept, never emptied")
    }
    if mounted {
      // Full: a filler takes all but a few kilobytes, so the next sample or checkpoint cannot be written.
      let filler = disk.appendingPathComponent("filler")
      _ = try Self.command("/bin/dd", ["if=/dev/zero", "of=\(filler.path)", "bs=1M", "count=64", "status=none"])
      try checkKept(try afterimage(more, in: root), cause: String(cString: strerror(ENOSPC)))
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasSuffix(".tmp") }, [], "no partial file is left")
      try FileManager.default.removeItem(at: filler)
      // Read-only: refused with the cause, nothing changed.
      XCTAssertEqual(try Self.command("/bin/mount", ["-o", "remount,ro", disk.path]), 0)
      try checkKept(try afterimage(more, in: root), cause: String(cString: strerror(EROFS)))
      XCTAssertEqual(try Self.command("/bin/mount", ["-o", "remount,rw", disk.path]), 0)
    } else {
      // An injected write failure: files may not grow past 300 kB (RLIMIT_FSIZE; writes beyond
      // it fail with EFBIG once SIGXFSZ is ignored).
      let limited = Process()
      limited.executableURL = URL(fileURLWithPath: "/bin/bash")
      limited.arguments = ["-c", "ulimit -f 300; trap '' XFSZ; exec \"$0\" \"$@\"", afterimageExecutable.path] + more
      limited.currentDirectoryURL = root
      limited.environment = ProcessInfo.processInfo.environment.merging(["AFTERIMAGE_CACHE": root.appendingPathComponent("cache").path]) { $1 }
      let pipe = Pipe()
      limited.standardOutput = pipe
      limited.standardError = pipe
      let deadline = try limited.run(deadline: 300)
      let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      try deadline.wait()
      try checkKept((limited.terminationStatus, output), cause: String(cString: strerror(EFBIG)))
    }
    // With room again the run resumes and finishes.
    XCTAssertEqual(try afterimage(more, in: root).status, 0)
    XCTAssertEqual(try loggedSteps(run), Array(stride(from: 10, through: 400, by: 10)), "every logged step once")
  }

  func testMismatchedImagesAreRefusedAtTheBoundary() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let train = ["inverter", "train", "--classifier", "c", "--out", "i", "--steps", "1", "--batch-size", "4", "--ch", "4", "--noise-size", "16",
                 "--no-attention", "--train-count", "16"]
    XCTAssertEqual(try afterimage(train, in: root).status, 0)
    // Shapes is 3-channel; a 1-channel folder of the same size used to crash inside `stack`.
    for label in ["a", "b"] {
      let folder = root.appendingPathComponent("grey/\(label)")
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      for index in 0..<10 { try PNG.write(Tensor.rand([1, 32, 32]), to: folder.appendingPathComponent("\(index).png")) }
    }
    let outcome = try afterimage(["inverter", "reconstruct", "--inverter", "i", "--dataset", "folder:grey", "--count", "1", "--out", "r.png"], in: root)
    XCTAssertNotEqual(outcome.status, 0)
    XCTAssertTrue(outcome.output.contains("the inverter in") && outcome.output.contains("work on 3×32² ones"), outcome.output)
  }

  func testAnImportedModelWhoseOutputDependsOnTheBatchIsRefused() throws {
    let root = try temporaryDirectory()
    let file = root.appendingPathComponent("batch2.pt").path
    // Logits from a reshape that hard-codes a batch of two: right for 2 images, wrong for 1.
    _ = try runPythonCode("""
      import torch
      class BatchOfTwo(torch.nn.Module):
          def forward(self, x):
              return x.reshape(2, -1)[:, :10]
      torch.jit.trace(BatchOfTwo(), torch.rand(2, 3, 8, 8)).save("\(file)")
      print("ok")
      """)
    let outcome = try afterimage(["classifier", "import", "--torchscript", file, "--input", "3x8x8", "--classes", "10", "--out", "mine"], in: root)
    XCTAssertNotEqual(outcome.status, 0)
    XCTAssertTrue(outcome.output.contains("for a batch of 1 images") && outcome.output.contains("depend on the batch size"), outcome.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("mine/config.json").path), "nothing is written")
  }

  func testAnImportedModelReturningATypeAfterimageDoesNotModelIsAClearError() throws {
    let root = try temporaryDirectory()
    let file = root.appendingPathComponent("complex.pt").path
    _ = try runPythonCode("""
      import torch
      class ComplexLogits(torch.nn.Module):
          def forward(self, x):
              return x.flatten(1)[:, :10].to(torch.complex64)
      torch.jit.trace(ComplexLogits(), torch.rand(2, 3, 8, 8)).save("\(file)")
      print("ok")
      """)
    let outcome = try afterimage(["classifier", "import", "--torchscript", file, "--input", "3x8x8", "--classes", "10", "--out", "mine"], in: root)
    XCTAssertNotEqual(outcome.status, 0)
    XCTAssertTrue(outcome.output.contains("which Afterimage does not support: return float32 logits"), outcome.output)
  }

  /// A data set whose every third image cannot be read.
  final class Flaky: Dataset {
    let name = "flaky"
    let count = 12
    let channels = 1
    let resolution = 8
    let classNames = ["a", "b"]
    func example(at index: Int) throws -> Example {
      if index % 3 == 2 { throw DatasetError("image \(index) is unreadable") }
      return Example(image: Tensor.zeros([1, 8, 8]), label: index % 2, factors: nil)
    }
  }

  func testALoaderErrorIsThrownNotSwallowed() throws {
    let loader = DataLoader(Flaky(), batchSize: 4, shuffle: false)
    var seen = 0
    XCTAssertThrowsError(try loader.epoch(0).forEachBatch { _ in seen += 1 }) { XCTAssertTrue("\($0)".contains("image 2 is unreadable"), "\($0)") }
    XCTAssertEqual(seen, 0, "the first batch holds the unreadable image")
  }

  func testADamagedConfigSaysWhichFieldNotADecodingErrorDump() throws {
    let folder = try temporaryDirectory()
    try Data(#"{"architecture": "resnet20", "channels": 3, "resolution": "thirty-two", "classNames": ["a"], "normalization": {"mean": [0], "std": [1]}}"#.utf8)
      .write(to: folder.appendingPathComponent("config.json"))
    XCTAssertThrowsError(try Classifiers.load(folder.path)) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains("config.json") && message.contains("the field 'resolution' is not Int"), message)
      XCTAssertFalse(message.contains("typeMismatch") || message.contains("CodingKeys"), message)
    }
  }

  /// Starts `afterimage arguments…` in `directory` and kills it with `signal` after `delay` s.
  func run(_ arguments: [String], in directory: URL, killedAfter delay: Double, with signal: Int32 = SIGKILL) throws -> Int32 {
    let process = afterimageProcess(arguments, in: directory)
    let deadline = try process.run(deadline: delay + 120)
    usleep(useconds_t(delay * 1_000_000))
    kill(process.processIdentifier, signal)
    try deadline.wait()
    return process.terminationStatus
  }

  /// The steps logged in a run's metrics.jsonl, in file order.
  func loggedSteps(_ run: URL) throws -> [Int] {
    guard let text = try? String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8) else { return [] }
    return try text.split(separator: "\n").map { line in
      let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "a torn metrics line: \(line)")
      return try XCTUnwrap(object["step"] as? Int)
    }
  }

  /// No test can hang on a child: past its deadline a subprocess gets SIGTERM twice, then
  /// SIGKILL (this one ignores SIGTERM), and waiting for it throws, naming the command.
  func testASubprocessPastItsDeadlineIsKilledAndNamed() throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", "trap '' TERM; while :; do sleep 0.1; done"]
    let deadline = try process.run(deadline: 1)
    XCTAssertThrowsError(try deadline.wait()) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains("did not end within 1 s") && message.contains("/bin/bash -c 'trap '' TERM; while :; do sleep 0.1; done'"), message)
    }
    XCTAssertEqual(process.terminationReason, .uncaughtSignal)
    XCTAssertEqual(process.terminationStatus, SIGKILL)
    let quick = Process()
    quick.executableURL = URL(fileURLWithPath: "/bin/true")
    XCTAssertNoThrow(try quick.run(deadline: 60).wait(), "a process that ends in time is no error")
  }

  /// A run whose step never ends (a stuck kernel, a peer that never answers) still stops: the
  /// first SIGTERM asks for a checkpoint after the step, a second ends the process at once with
  /// a message, and the last checkpoint stays whole for --resume. Steps here take seconds, so the
  /// second signal lands inside one.
  func testASecondStopSignalEndsAStuckRunAtOnceAndKeepsTheCheckpoint() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let run = root.appendingPathComponent("i")
    let train = ["inverter", "train", "--classifier", "c", "--out", "i", "--steps", "3", "--batch-size", "64", "--ch", "64",
                 "--train-count", "64", "--checkpoint-every", "1", "--sample-every", "1000"]
    for signals in [[SIGTERM, SIGTERM], [SIGINT, SIGTERM]] {
      try? FileManager.default.removeItem(at: run)
      let process = afterimageProcess(train, in: root)
      let log = root.appendingPathComponent("log")
      FileManager.default.createFile(atPath: log.path, contents: nil)
      let handle = try FileHandle(forWritingTo: log)
      process.standardOutput = handle
      process.standardError = handle
      let deadline = try process.run(deadline: 300)
      // After the first checkpoint, a step is under way.
      for _ in 0..<3000 where process.isRunning && !FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint.safetensors").path) { usleep(20_000) }
      let checkpoint = try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors"))
      kill(process.processIdentifier, signals[0])
      for _ in 0..<500 where !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("stopping after this step") { usleep(10_000) }
      kill(process.processIdentifier, signals[1])
      try deadline.wait()
      let output = try String(contentsOf: log, encoding: .utf8)
      XCTAssertEqual(process.terminationReason, .exit, output)
      XCTAssertEqual(process.terminationStatus, 128 + signals[1], "ended at once by the second signal:\n\(output)")
      XCTAssertTrue(output.contains("second stop signal: ending at once"), output)
      XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent("checkpoint.safetensors")), checkpoint, "the last checkpoint is untouched")
    }
    let resumed = try afterimage(train + ["--resume"], in: root)
    XCTAssertEqual(resumed.status, 0, resumed.output)
  }

  func testKilledRunsAlwaysResumeFromTheirLastCompleteCheckpoint() throws {
    let root = try temporaryDirectory()
    XCTAssertEqual(try afterimage(Self.tinyClassifier + ["--out", "c"], in: root).status, 0)
    let run = root.appendingPathComponent("i")
    let checkpoint = run.appendingPathComponent("checkpoint.safetensors")
    // 1500 steps: twenty kills 0.3–3 s apart must not reach the end on a fast machine (600 did, at 30 steps/s).
    let train = ["inverter", "train", "--classifier", "c", "--out", "i", "--steps", "1500", "--batch-size", "4", "--ch", "4", "--noise-size", "16",
                 "--no-attention", "--train-count", "16", "--checkpoint-every", "1", "--sample-every", "1000"]
    var random: UInt64 = 20_261_201  // a fixed LCG: the same kill times on every run of the test
    var kills = 0
    var lastStep = 0
    while kills < 20 {
      random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      let delay = 0.3 + Double(random >> 40) / Double(1 << 24) * 2.7  // 0.3 to 3 s: start-up, steps, checkpoint writes
      let resume = FileManager.default.fileExists(atPath: checkpoint.path)
      let status = try self.run(train + [resume ? "--resume" : "--force"], in: root, killedAfter: delay)
      if status == 0 { break }  // it finished before the kill
      kills += 1
      guard FileManager.default.fileExists(atPath: checkpoint.path) else { continue }
      // Never torn: the checkpoint on disk is always a complete one, at a step that never goes back.
      let (_, step) = try RunDirectory(url: run).readCheckpoint(kind: "inverter")
      XCTAssertGreaterThanOrEqual(step, lastStep, "after kill \(kills)")
      lastStep = step
    }
    XCTAssertGreaterThanOrEqual(kills, 10, "most runs were killed mid-way")
    // SIGINT and SIGTERM, once training is under way: a checkpoint, then exit status 130.
    var signalled = 0
    for signal in [SIGINT, SIGTERM] {
      let process = afterimageProcess(train + ["--resume"], in: root)
      let before = try RunDirectory(url: run).readCheckpoint(kind: "inverter").step
      let deadline = try process.run(deadline: 300)
      // Under way: a newer checkpoint than the one it resumed from.
      for _ in 0..<200 where process.isRunning && ((try? RunDirectory(url: run).readCheckpoint(kind: "inverter").step) ?? before) <= before { usleep(50_000) }
      guard process.isRunning else { try deadline.wait(); break }  // it finished first
      kill(process.processIdentifier, signal)
      try deadline.wait()
      XCTAssertEqual(process.terminationStatus, 130, "signal \(signal)")
      signalled += 1
      XCTAssertGreaterThan(try RunDirectory(url: run).readCheckpoint(kind: "inverter").step, before)
    }
    XCTAssertEqual(signalled, 2, "both signals reached a run under way")
    let finished = try afterimage(train + ["--resume"], in: root)
    XCTAssertEqual(finished.status, 0, finished.output)
    XCTAssertEqual(try loggedSteps(run), Array(stride(from: 10, through: 1500, by: 10)), "every logged step once, none missing, none repeated")
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: run.path).filter { $0.hasSuffix(".tmp") }
    XCTAssertEqual(leftovers, [], "no temporary files are left")
    XCTAssertNoThrow(try Inverter.load(run.path))
  }
}
