import Foundation
import TestSupport
import XCTest
import Torch

/// The `afterimage` commands as a user runs them: tiny runs end to end, and bad input giving a
/// one-line error (exit status 1 or 64), never a crash with a stack trace.
final class CommandLineTests: XCTestCase {
  struct Outcome {
    let status: Int32
    let output: String
  }

  /// Runs `afterimage arguments…` in `directory`, returning its exit status and all its output.
  @discardableResult
  func afterimage(_ arguments: [String], in directory: URL, file: StaticString = #filePath, line: UInt = #line) throws -> Outcome {
    let (status, output) = try runAfterimage(arguments, in: directory)
    XCTAssertFalse(output.contains("Fatal error") || output.contains("Program crashed") || output.contains("Backtrac"),
                   "afterimage \(arguments.joined(separator: " ")) crashed:\n\(output)", file: file, line: line)
    return Outcome(status: status, output: output)
  }

  func expectSuccess(_ arguments: [String], in directory: URL, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let outcome = try afterimage(arguments, in: directory, file: file, line: line)
    XCTAssertEqual(outcome.status, 0, "afterimage \(arguments.joined(separator: " ")):\n\(outcome.output)", file: file, line: line)
    return outcome.output
  }

  func expectFailure(_ arguments: [String], saying message: String, in directory: URL, file: StaticString = #filePath, line: UInt = #line) throws {
    let outcome = try afterimage(arguments, in: directory, file: file, line: line)
    XCTAssertNotEqual(outcome.status, 0, "afterimage \(arguments.joined(separator: " ")) should fail", file: file, line: line)
    XCTAssertTrue(outcome.output.contains(message), "expected '\(message)' in:\n\(outcome.output)", file: file, line: line)
  }

  func testTheWholePipelineRunsOnTinyModels() throws {
    let root = try temporaryDirectory()
    XCTAssertTrue(try expectSuccess(["doctor"], in: root).contains("libtorch"))
    XCTAssertTrue(try expectSuccess(["data", "info", "--dataset", "shapes:train=200", "--samples", "50"], in: root).contains("200 images"))
    _ = try expectSuccess(["data", "preview", "--dataset", "shapes", "--count", "8", "--out", "grid.png"], in: root)
    XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("grid.png").path))
    let small = "shapes:train=256,test=64"
    for (name, arch) in [("classifier", "resnet20"), ("eval", "evalnet")] {
      _ = try expectSuccess(
        ["classifier", "train", "--dataset", small, "--arch", arch, "--width", "0.25", "--epochs", "1", "--batch-size", "32",
         "--warmup-steps", "2", "--out", name, "--final-attack-count", "16"] + (name == "eval" ? ["--no-tensorboard"] : []), in: root)
    }
    // The TensorBoard log: written by default, not with --no-tensorboard.
    XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("classifier/events.out.tfevents.afterimage").path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("eval/events.out.tfevents.afterimage").path))
    let evaluated = try expectSuccess(
      ["classifier", "eval", "--classifier", "classifier", "--attack", "pgd-linf:8/255", "--steps", "2", "--count", "32",
       "--per-class", "--json", "eval.json"], in: root)
    XCTAssertTrue(evaluated.contains("clean accuracy"), evaluated)
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("eval.json"))) as! [String: Any]
    XCTAssertNotNil(json["clean_accuracy"] as? Double)
    XCTAssertNotNil(json["attack_accuracy"] as? Double)
    _ = try expectSuccess(
      ["inverter", "train", "--classifier", "classifier", "--out", "inverter", "--steps", "4", "--batch-size", "8", "--ch", "4",
       "--noise-size", "16", "--no-attention", "--preset", "fidelity", "--train-count", "64"], in: root)
    XCTAssertTrue(try expectSuccess(["inverter", "reconstruct", "--inverter", "inverter", "--count", "4", "--samples", "2", "--out", "r.png"], in: root)
      .contains("top-1 agreement"))
    // The representation in BigGAN's seed: recorded, and the inverter reconstructs.
    _ = try expectSuccess(
      ["inverter", "train", "--classifier", "classifier", "--out", "seeded", "--steps", "2", "--batch-size", "8", "--ch", "4",
       "--noise-size", "16", "--no-attention", "--train-count", "32", "--seed-input", "noise+representation", "--snapshot-at", "1"], in: root)
    // The snapshot at step 1 is an inverter of its own.
    XCTAssertTrue(try expectSuccess(["inverter", "reconstruct", "--inverter", "seeded/snapshots/step-000001", "--count", "2", "--out", "s1.png"], in: root)
      .contains("top-1 agreement"))
    try expectFailure(["inverter", "train", "--classifier", "classifier", "--out", "bad", "--steps", "5", "--snapshot-at", "3,9"], saying: "--snapshot-at takes", in: root)
    XCTAssertTrue(try String(contentsOf: root.appendingPathComponent("seeded/config.json"), encoding: .utf8).contains("\"seedInput\" : \"noise+representation\""))
    XCTAssertTrue(try expectSuccess(["inverter", "reconstruct", "--inverter", "seeded", "--count", "2", "--out", "s.png"], in: root).contains("top-1 agreement"))
    // A spatial feature map placed in the seed: its grid recorded; the logits have none to place.
    _ = try expectSuccess(
      ["inverter", "train", "--classifier", "classifier", "--out", "placed", "--steps", "2", "--batch-size", "8", "--ch", "4",
       "--noise-size", "16", "--no-attention", "--train-count", "32", "--representation", "features:layer3",
       "--seed-input", "noise+representation+map", "--preset", "fidelity", "--logit-jitter", "2"], in: root)
    let placed = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("placed/config.json"))) as! [String: Any]
    XCTAssertEqual((placed["representationGrid"] as? [Int])?.dropFirst(), [4, 4], "layer3's 8×8 map pooled to 4×4")
    XCTAssertEqual((placed["losses"] as? [String: Any])?["logitJitter"] as? Int, 2)
    XCTAssertTrue(try expectSuccess(["inverter", "reconstruct", "--inverter", "placed", "--count", "2", "--out", "p.png"], in: root).contains("top-1 agreement"))
    try expectFailure(
      ["inverter", "train", "--classifier", "classifier", "--out", "bad", "--steps", "2", "--seed-input", "noise+representation+map"],
      saying: "is not a spatial map", in: root)
    try expectFailure(
      ["inverter", "train", "--classifier", "classifier", "--arch", "upconv", "--out", "bad", "--seed-input", "noise+representation"],
      saying: "--seed-input is a choice of the BigGAN generator", in: root)
    _ = try expectSuccess(
      ["inverter", "train", "--classifier", "classifier", "--arch", "upconv", "--out", "upconv", "--steps", "3", "--batch-size", "8",
       "--ch", "4", "--train-count", "32"], in: root)
    XCTAssertTrue(try expectSuccess(["inverter", "optimize", "--classifier", "classifier", "--count", "2", "--steps", "3", "--out", "o.png"], in: root)
      .contains("images/s"))
    let analysis = try expectSuccess(
      ["analyze", "reconstruct", "--inverter", "inverter", "--evaluation", "eval", "--count", "20", "--retrieval-n", "5", "--noise-samples", "2",
       "--out", "analysis"], in: root)
    XCTAssertTrue(analysis.contains("retrieval@5"), analysis)
    XCTAssertTrue(analysis.contains("satisfied, not drawn (top-1 agreement − evaluation accuracy)"), analysis)
    let factors = try expectSuccess(
      ["analyze", "factors", "--inverter", "inverter", "--count", "20", "--train-count", "128", "--epochs", "1", "--draws", "3", "--out", "factors"], in: root)
    XCTAssertTrue(factors.contains("object_hue") && factors.contains("3 draws") && factors.contains("The geometric ruler"), factors)
    XCTAssertTrue(factors.contains("The two rulers agree") || factors.contains("The two rulers disagree"), factors)
    let factorJSON = try String(contentsOf: root.appendingPathComponent("factors/results.json"), encoding: .utf8)
    for key in ["\"draws\" : 3", "\"averaged\"", "\"single_draw_efficiency\"", "\"geometric\"", "\"ceiling\""] {
      XCTAssertTrue(factorJSON.contains(key), "results.json has \(key)")
    }
    try expectFailure(["analyze", "factors", "--inverter", "inverter", "--draws", "0", "--out", "f0"], saying: "--draws must be 1 to 64", in: root)
    for experiment in ["noise", "logit-shift", "logit-scale", "logit-noise", "topk", "interpolate", "misclassified", "adversarial", "transforms", "iterate"] {
      let text = try expectSuccess(
        ["analyze", experiment, "--inverter", "inverter", "--evaluation", "eval", "--count", "6", "--out", "analysis-\(experiment)"], in: root)
      XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("analysis-\(experiment)/figure.png").path), text)
      XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("analysis-\(experiment)/results.json").path), text)
    }
    let compared = try expectSuccess(
      ["analyze", "compare", "--inverters", "inverter", "upconv", "--optimize", "classifier", "--optimize-steps", "2", "--evaluation", "eval",
       "--count", "10", "--retrieval-n", "5", "--out", "analysis-compare"], in: root)
    XCTAssertTrue(compared.contains("optimisation (2 steps)"), compared)
    let experiments = ["compare", "noise", "logit-shift", "logit-scale", "logit-noise", "topk", "interpolate", "misclassified", "adversarial", "transforms", "iterate"]
    _ = try expectSuccess(["report", "--from", "analysis", "factors"] + experiments.map { "analysis-\($0)" } + ["--out", "report.html"], in: root)
    let page = try String(contentsOf: root.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertTrue(page.contains("Reconstruction fidelity") && page.contains("What survives in the logits"), "sections have titles")
    XCTAssertTrue(page.contains("data:image/png;base64,"), "images are embedded")
    XCTAssertTrue(page.contains("<svg"), "curves are inline")
    XCTAssertEqual(page.components(separatedBy: "<section>").count - 1, 2 + experiments.count)
    try expectFailure(["report", "--from", "grid.png"], saying: "experiment.json", in: root)
    XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("analysis/results.json").path))

    // The demo on a models folder laid out like the shipped one (the tiny models stand in for
    // both the standard and the robust ones).
    let files = FileManager.default
    for (source, destination) in [
      ("classifier", "classifiers/shapes-standard"), ("classifier", "classifiers/shapes-robust"), ("eval", "eval/shapes"),
      ("inverter", "inverters/shapes-standard-fidelity"), ("inverter", "inverters/shapes-robust-fidelity"), ("upconv", "inverters/shapes-standard-upconv"),
    ] {
      let target = root.appendingPathComponent("models/\(destination)")
      try files.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
      try files.copyItem(at: root.appendingPathComponent(source), to: target)
    }
    let demo = try expectSuccess(
      ["demo", "--models", "models", "--datasets", "shapes", "--count", "20", "--optimize-steps", "2", "--out", "demo"], in: root)
    XCTAssertTrue(demo.contains("standard vs robust"), demo)
    XCTAssertTrue(demo.contains("shapes-standard-paper is not there"), "missing optional inverters are named")
    let demoPage = try String(contentsOf: root.appendingPathComponent("demo/report.html"), encoding: .utf8)
    XCTAssertTrue(demoPage.contains("The paper's seven findings") && demoPage.contains("Every inverter side by side") && demoPage.contains("Image transformations"), "the report opens with the verdicts, then the tables and the sections")
    XCTAssertTrue(demo.contains("the paper's findings: verdict per data set"), demo)
    XCTAssertTrue(demo.contains("shapes instrument: "), "every data set has a calibration line:\n\(demo)")
    XCTAssertTrue(demo.contains("shapes-factors is not there"), "the missing regressor is named")
    let demoResults = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("demo/results.json"))) as! [String: Any]
    let methods = (demoResults["headline"] as! [[String: Any]]).map { $0["method"] as! String }
    XCTAssertEqual(methods, ["standard-fidelity", "robust-fidelity", "standard-upconv", "optimisation (standard)"])
    let calibrations = try XCTUnwrap(demoResults["calibrations"] as? [[String: Any]])
    XCTAssertEqual(calibrations.map { $0["dataset"] as? String }, ["shapes"])
    XCTAssertEqual((calibrations[0]["checks"] as? [[String: Any]])?.count, 2, "the standard and the robust fidelity inverters")
    // A verdict reads "instrument not calibrated" exactly when its data set's instrument fails.
    let calibrated = demo.contains("shapes instrument: calibrated")
    let verdictNames = (demoResults["verdicts"] as? [[String: Any]] ?? []).compactMap { $0["verdict"] as? String }
    XCTAssertEqual(verdictNames.contains("instrument not calibrated"), !calibrated, demo)
    let experimentsRun = (demoResults["experiments"] as! [String: Any]).keys.sorted()
    XCTAssertTrue(experimentsRun.contains("shapes-factors-robust") && experimentsRun.contains("shapes-adversarial-standard"), "\(experimentsRun)")
    XCTAssertTrue(try expectSuccess(["models", "list", "--models", "models"], in: root).contains("afterimage inverter train --out models/inverters/shapes-robust-paper"))
  }

  /// `study depth|classes|architecture` on tiny models: each trains what is missing, writes its
  /// results and figures, and a rerun reuses what it has.
  /// The reconstructions as arrays: `inverter reconstruct --arrays` writes .npz and .safetensors
  /// that numpy and the safetensors package read, equal to each other and to the tiles of the
  /// grid PNG (to 8-bit rounding); `analyze reconstruct` and `analyze factors` write scores.csv
  /// with one row per scored image, and their arrays; an experiment without reconstructions
  /// refuses --arrays with what to use.
  func testReconstructionsAndScoresAreWrittenAsArraysAndCSV() throws {
    let root = try temporaryDirectory()
    _ = try expectSuccess(
      ["classifier", "train", "--dataset", "shapes:train=256,test=64", "--arch", "resnet20", "--width", "0.25", "--epochs", "1",
       "--batch-size", "32", "--warmup-steps", "2", "--out", "classifier", "--final-attack-count", "16", "--no-tensorboard"], in: root)
    _ = try expectSuccess(
      ["inverter", "train", "--classifier", "classifier", "--out", "inverter", "--steps", "3", "--batch-size", "8", "--ch", "4",
       "--noise-size", "16", "--no-attention", "--train-count", "32"], in: root)
    _ = try expectSuccess(
      ["inverter", "reconstruct", "--inverter", "inverter", "--count", "5", "--samples", "2", "--out", "r.png", "--arrays", "safetensors,npz"], in: root)
    let grid = try JSONSerialization.jsonObject(
      with: Data(runPython("read_arrays.py", [root.appendingPathComponent("r.png").path, "2", "3", "2"]).utf8)) as! [String: Any]
    let shapes = try XCTUnwrap(grid["shapes"] as? [String: [Int]])
    XCTAssertEqual(shapes["originals"], [5, 3, 32, 32])
    XCTAssertEqual(shapes["reconstructions"], [5, 2, 3, 32, 32])
    XCTAssertEqual(shapes["representation"], [5, 10])
    XCTAssertEqual(shapes["labels"], [5])
    XCTAssertEqual(shapes["predictions/classifier_reconstructions"], [5, 2])
    XCTAssertEqual(shapes["factors"], [5, 10])
    XCTAssertEqual((grid["dtypes"] as? [String: String])?["reconstructions"], "float32")
    XCTAssertLessThanOrEqual(try XCTUnwrap(grid["largest_difference_from_grid"] as? Double), 0.5 / 255 + 1e-6, "the grid shows these pixels")
    let range = try XCTUnwrap(grid["range"] as? [Double])
    XCTAssertTrue(range[0] >= 0 && range[1] <= 1, "\(range)")
    // analyze reconstruct: scores.csv, a row per image, and the arrays with every noise draw.
    _ = try expectSuccess(
      ["analyze", "reconstruct", "--inverter", "inverter", "--evaluation", "classifier", "--count", "6", "--retrieval-n", "3",
       "--noise-samples", "2", "--out", "scored", "--arrays", "npz"], in: root)
    let csv = try String(contentsOf: root.appendingPathComponent("scored/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(csv.count, 1 + 6, "a header and one row per image")
    XCTAssertTrue(csv[0].hasPrefix("image,psnr,ssim,perceptual_distance,top1_agreement,eval_correct,drawn_gap"), String(csv[0]))
    let npz = try runPythonCode(
      "import numpy as np; a = np.load('\(root.appendingPathComponent("scored/arrays.npz").path)'); print(a['reconstructions'].shape, a['predictions/evaluation_reconstructions'].shape)")
    XCTAssertEqual(npz.trimmingCharacters(in: .whitespacesAndNewlines), "(6, 2, 3, 32, 32) (6, 2)")
    // analyze factors: the true factors and both rulers' readings per image.
    _ = try expectSuccess(
      ["analyze", "factors", "--inverter", "inverter", "--count", "10", "--train-count", "128", "--epochs", "1", "--draws", "2",
       "--out", "factors", "--arrays", "safetensors"], in: root)
    let factors = try String(contentsOf: root.appendingPathComponent("factors/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(factors.count, 1 + 10)
    XCTAssertTrue(factors[0].contains("true_centre_x") && factors[0].contains("geometric_reconstruction_size"), String(factors[0]))
    XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("factors/arrays.safetensors").path))
    try expectFailure(
      ["analyze", "noise", "--inverter", "inverter", "--count", "4", "--out", "n", "--arrays", "npz"], saying: "keeps no reconstructions to write as arrays", in: root)
    // The held-out experiments with per-image scores write them too.
    _ = try expectSuccess(["analyze", "noise", "--inverter", "inverter", "--evaluation", "classifier", "--count", "4", "--out", "noise"], in: root)
    XCTAssertEqual(try String(contentsOf: root.appendingPathComponent("noise/scores.csv"), encoding: .utf8).split(separator: "\n").count, 1 + 4)
    _ = try expectSuccess(
      ["analyze", "logit-noise", "--inverter", "inverter", "--evaluation", "classifier", "--count", "4", "--magnitudes", "0.5,1", "--out", "ln"], in: root)
    let curve = try String(contentsOf: root.appendingPathComponent("ln/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(curve.count, 1 + 4)
    XCTAssertEqual(curve[0], "image,perceptual_change@0.5,top1_kept@0.5,eval_correct@0.5,perceptual_change@1,top1_kept@1,eval_correct@1")
    _ = try expectSuccess(["analyze", "misclassified", "--inverter", "inverter", "--evaluation", "classifier", "--count", "8", "--out", "mis"], in: root)
    let mis = try String(contentsOf: root.appendingPathComponent("mis/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(mis.count, 1 + 8)
    XCTAssertEqual(mis[0], "image,label,classifier_prediction,eval_on_reconstruction,wrong")
    XCTAssertFalse(mis.dropFirst().contains { $0.contains(",-1") }, "every image's reconstruction was judged")
    _ = try expectSuccess(["analyze", "interpolate", "--inverter", "inverter", "--evaluation", "classifier", "--count", "6", "--out", "int"], in: root)
    XCTAssertEqual(try String(contentsOf: root.appendingPathComponent("int/scores.csv"), encoding: .utf8).split(separator: "\n").count, 1 + 3, "a row per pair")
    _ = try expectSuccess(
      ["analyze", "compare", "--inverters", "inverter", "--evaluation", "classifier", "--count", "6", "--retrieval-n", "3", "--out", "cmp"], in: root)
    let compared = try String(contentsOf: root.appendingPathComponent("cmp/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(compared.count, 1 + 6)
    XCTAssertTrue(compared[0].hasPrefix("image,inverter/psnr,inverter/ssim"), String(compared[0]))
    _ = try expectSuccess(["analyze", "iterate", "--inverter", "inverter", "--evaluation", "classifier", "--count", "4", "--iterations", "2", "--out", "it"], in: root)
    let iterated = try String(contentsOf: root.appendingPathComponent("it/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(iterated.count, 1 + 4)
    XCTAssertTrue(iterated[0].hasSuffix("top1_kept@2,eval_correct@2"), String(iterated[0]))
    _ = try expectSuccess(["analyze", "transforms", "--inverter", "inverter", "--evaluation", "classifier", "--count", "4", "--out", "tr"], in: root)
    let transformed = try String(contentsOf: root.appendingPathComponent("tr/scores.csv"), encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(transformed.count, 1 + 4)
    XCTAssertTrue(transformed[0].contains("equivariance_error:blur@2,change:blur@2"), String(transformed[0]))
    try expectFailure(["inverter", "reconstruct", "--inverter", "inverter", "--arrays", "csv"], saying: "--arrays takes safetensors, npz", in: root)
  }

  func testTheStudiesRunEndToEndOnTinyModels() throws {
    let root = try temporaryDirectory()
    let repository = parityScripts.deletingLastPathComponent().deletingLastPathComponent()
    let regressor = repository.appendingPathComponent("models/eval/shapes-factors").path
    let small = "shapes:train=256,test=128"
    let classifierFlags = [
      "--arch", "resnet20", "--width", "0.25", "--epochs", "1", "--batch-size", "32", "--warmup-steps", "2", "--final-attack-count", "16", "--train-count", "256",
    ]
    for (name, arch) in [("tiny", "resnet20"), ("tiny-vgg", "vgg")] {
      var flags = classifierFlags
      flags[1] = arch
      _ = try expectSuccess(["classifier", "train", "--dataset", small, "--out", "models/classifiers/\(name)"] + flags, in: root)
    }
    let inverterFlags = "--steps 2 --batch-size 8 --ch 4 --noise-size 16 --no-attention --train-count 64"
    let counts = ["--count", "20", "--train-count", "100", "--epochs", "2", "--regressor", regressor, "--inverter-options=\(inverterFlags)"]

    let depth = try expectSuccess(["study", "depth", "--classifier", "tiny", "--out", "depth"] + counts, in: root)
    XCTAssertTrue(depth.contains("to train  models/inverters/tiny-pool-fidelity"), depth)
    let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("depth/results.json"))) as! [String: Any]
    let entries = (stored["result"] as! [String: Any])["entries"] as! [[String: Any]]
    let layers = (entries[0]["information"] as! [String: Any])["layers"] as! [[String: Any]]
    XCTAssertEqual(layers.map { $0["representation"] as! String }, ["features:stem", "features:layer1", "features:layer2", "features:layer3", "features:pool", "logits"])
    XCTAssertEqual(layers.filter { $0["reconstructions"] != nil }.map { $0["representation"] as! String }, ["features:pool", "logits"], "both inverters scored")
    for figure in ["curve-tiny.svg", "figure-tiny.png"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("depth/\(figure)").path), figure)
    }
    let again = try expectSuccess(["study", "depth", "--classifier", "tiny", "--out", "depth"] + counts, in: root)
    XCTAssertTrue(again.contains("found     models/inverters/tiny-pool-fidelity") && again.contains("tiny: reusing"), again)

    let classes = try expectSuccess(
      ["study", "classes", "--standard", "3,4", "--robust", "4", "--shapes-options", "train=256,test=128", "--out", "classes",
       "--classifier-options=" + classifierFlags.dropFirst(2).joined(separator: " ")] + counts, in: root)
    XCTAssertTrue(classes.contains("to train  models/classifiers/shapes-4-robust"), classes)
    let robust = try String(contentsOf: root.appendingPathComponent("models/classifiers/shapes-4-robust/config.json"), encoding: .utf8)
    XCTAssertTrue(robust.contains("linf") && robust.contains("shapes:classes=4,train=256,test=128"), "the recipe scaled to K: \(robust)")
    let points = ((try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("classes/results.json"))) as! [String: Any])["result"] as! [String: Any])["points"] as! [[String: Any]]
    XCTAssertEqual(points.count, 3)
    XCTAssertEqual(points.filter { $0["reconstructions"] != nil }.count, 2, "the largest K is inverted, standard and robust")
    XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("classes/curve.svg").path))

    let architecture = try expectSuccess(
      ["study", "architecture", "--classifier", "tiny", "tiny-vgg", "--out", "architecture", "--count", "20",
       "--evaluation", repository.appendingPathComponent("models/eval/shapes").path, "--inverter-options=\(inverterFlags)"], in: root)
    XCTAssertTrue(architecture.contains("vgg"), architecture)
    let report = try expectSuccess(["report", "--from", "depth", "classes", "architecture", "--out", "report.html"], in: root)
    XCTAssertTrue(report.contains("report.html"), report)
    let html = try String(contentsOf: root.appendingPathComponent("report.html"), encoding: .utf8)
    XCTAssertTrue(html.contains("Information across depth") && html.contains("<svg") && html.contains("Architecture families"), "the studies' sections")
    try expectFailure(["study", "depth", "--classifier", "absent", "--out", "x"], saying: "no classifier models/classifiers/absent", in: root)
    try expectFailure(["study", "classes", "--standard", "1", "--out", "x"], saying: "class counts are comma-separated integers", in: root)
  }

  func testBadInputGivesAClearErrorNotACrash() throws {
    let root = try temporaryDirectory()
    try expectFailure(["data", "info", "--dataset", "imagenet"], saying: "unknown data set", in: root)
    try expectFailure(["data", "info", "--dataset", "fashion-mnist", "--resolution", "0"], saying: "outside 8…1024", in: root)
    try expectFailure(["data", "info", "--dataset", "folder:/nonexistent"], saying: "no such folder", in: root)
    try expectFailure(["classifier", "train", "--out", "x", "--momentum", "-1"], saying: "--momentum", in: root)
    try expectFailure(["classifier", "train", "--out", "x", "--batch-size", "0"], saying: "--batch-size", in: root)
    try expectFailure(["classifier", "train", "--out", "x", "--arch", "vgg16"], saying: "--arch must be", in: root)
    try expectFailure(["classifier", "eval", "--classifier", "missing"], saying: "no classifier at missing", in: root)
    try expectFailure(["classifier", "eval", "--classifier", "x", "--steps", "-1"], saying: "--steps", in: root)
    try Data("not a model".utf8).write(to: root.appendingPathComponent("bad.pt"))
    try expectFailure(
      ["classifier", "import", "--torchscript", "bad.pt", "--input", "3x32x32", "--classes", "10", "--out", "imported"],
      saying: "not a TorchScript archive", in: root)
    try expectFailure(["classifier", "import", "--torchscript", "bad.pt", "--input", "3x32", "--classes", "10", "--out", "i"], saying: "CxHxW", in: root)
    try Data([0x10, 0, 0, 0, 0, 0, 0, 0]).write(to: root.appendingPathComponent("truncated.safetensors"))
    try expectFailure(["classifier", "eval", "--classifier", "truncated.safetensors"], saying: "truncated", in: root)
    try expectFailure(["inverter", "reconstruct", "--inverter", "nowhere"], saying: "no inverter at nowhere", in: root)
    try expectFailure(["analyze", "reconstruct", "--inverter", "nowhere", "--out", "a"], saying: "no inverter at nowhere", in: root)
    try expectFailure(["demo", "--models", "nowhere", "--out", "d"], saying: "missing in nowhere: classifiers/shapes-standard", in: root)
    try expectFailure(["demo", "--datasets", "cifar10"], saying: "not 'cifar10'", in: root)
    try expectFailure(["models", "train", "nope"], saying: "no shipped model called 'nope'", in: root)
    // Every recipe of a shipped model is a valid command line.
    let recipes = try expectSuccess(["models", "train", "--dry-run"], in: root)
    XCTAssertEqual(recipes.split(separator: "\n").filter { $0.hasPrefix("afterimage ") }.count, 34, recipes)
    XCTAssertTrue(recipes.contains("afterimage study depth --out models/studies/depth --models models"), recipes)
    XCTAssertTrue(recipes.contains("--representation features:pool"), recipes)
    XCTAssertTrue(recipes.contains("afterimage inverter train --out models/inverters/shapes-robust-paper --classifier models/classifiers/shapes-robust --preset paper"))
    XCTAssertTrue(recipes.contains("afterimage analyze factor-regressor --out models/eval/shapes-factors"), recipes)
    XCTAssertTrue(recipes.contains("afterimage analyze seeds --out models/studies/fashion-mnist-seeds --standard models/inverters/fashion-mnist-standard-fidelity models/inverters/fashion-mnist-standard-fidelity-seed1"), recipes)
    try expectFailure(["analyze", "seeds", "--standard", "a", "b", "--robust", "c", "--out", "s"], saying: "as many --robust as --standard", in: root)
    try expectFailure(["analyze", "factor-regressor", "--dataset", "fashion-mnist", "--out", "f"], saying: "not a Shapes data set", in: root)
    try expectFailure(["analyze", "factors", "--inverter", "nowhere", "--regressor", "r", "--out", "f"], saying: "no inverter at nowhere", in: root)
  }

  /// --device and --precision as a user meets them on a CPU-only machine, and a PyTorch 2.x
  /// model imported and inverted with the default recipe (its perceptual layers chosen for it).
  func testDevicesPrecisionAndAnImportedModelFromTheCommandLine() throws {
    let root = try temporaryDirectory()
    let doctor = try expectSuccess(["doctor"], in: root)
    for line in ["libtorch    2.", "oneDNN      v", "CPU kernels", "CUDA        not built in", "--device auto picks cpu"] {
      XCTAssertTrue(doctor.contains(line), "doctor names '\(line)':\n\(doctor)")
    }
    XCTAssertTrue(doctor.contains("oneDNN ISA  \(InstructionSet.oneDNNDispatches) (this CPU: \(InstructionSet.ofThisCPU)"), doctor)
    // Capped to AVX2, as on an AVX2-only CPU: the work-around for oneDNN bug 6035 is on.
    let capped = try runAfterimage(["doctor"], in: root, environment: ["ONEDNN_MAX_CPU_ISA": "AVX2"])
    let expected = min(InstructionSet.ofThisCPU, .avx2)
    XCTAssertTrue(capped.output.contains("oneDNN ISA  \(expected) (this CPU: \(InstructionSet.ofThisCPU); capped by ONEDNN_MAX_CPU_ISA=AVX2)"), capped.output)
    XCTAssertTrue(capped.output.contains(expected == .avx2 ? "oneDNN bug 6035: active" : "oneDNN bug 6035: not needed"), capped.output)
    let small = "shapes:train=64,test=32"
    let train = ["classifier", "train", "--dataset", small, "--width", "0.25", "--epochs", "1", "--batch-size", "32", "--out", "c"]
    try expectFailure(train + ["--device", "cuda"], saying: "has no usable CUDA", in: root)
    try expectFailure(train + ["--device", "tpu"], saying: "'tpu' is not a device", in: root)
    try expectFailure(train + ["--precision", "fp8"], saying: "--precision must be float32 or bf16", in: root)
    XCTAssertTrue(try expectSuccess(train + ["--device", "cpu", "--precision", "bf16"], in: root).contains("test accuracy"))
    try runPython("pytorch2_models.py", [root.appendingPathComponent("exported").path])
    let imported = try expectSuccess(
      ["classifier", "import", "--torchscript", "exported/mobilenet.pt", "--input", "3x32x32", "--classes", "10",
       "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--out", "mobilenet"], in: root)
    XCTAssertTrue(imported.contains("default perceptual layers: features.1, features"), imported)
    _ = try expectSuccess(
      ["inverter", "train", "--classifier", "mobilenet", "--dataset", small, "--preset", "fidelity", "--steps", "2",
       "--batch-size", "16", "--ch", "4", "--device", "auto", "--precision", "bf16", "--out", "inverter"], in: root)
    let config = try String(contentsOf: root.appendingPathComponent("inverter/config.json"), encoding: .utf8)
    XCTAssertTrue(config.contains("features.1"), "the chosen layers are recorded: \(config)")
    XCTAssertTrue(try expectSuccess(["inverter", "reconstruct", "--inverter", "inverter", "--count", "4", "--device", "cpu", "--out", "r.png"], in: root)
      .contains("top-1 agreement"))
    try expectFailure(["inverter", "reconstruct", "--inverter", "inverter", "--device", "cuda:3"], saying: "--device cuda:3", in: root)
  }
}
