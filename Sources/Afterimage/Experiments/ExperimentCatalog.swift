import Foundation

/// Every experiment's result type, so `StoredExperiment` (the report, the demo) can read any
/// folder back into its type. Each type names the kinds it is stored under (`kinds`), so this
/// list cannot disagree with them.
public enum ExperimentCatalog {
  public static let resultTypes: [any ExperimentResult.Type] = [
    ReconstructionResult.self, CompareResult.self, FactorResult.self, NoiseResult.self, LogitCurveResult.self,
    InterpolationResult.self, MisclassifiedResult.self, AdversarialResult.self, TransformResult.self,
    IterationResult.self, SeedStudyResult.self, InformationResult.self,
    DepthStudyResult.self, ClassesStudyResult.self, ArchitectureStudyResult.self,
  ]

  /// Every kind a results.json may name, in catalogue order.
  public static var kinds: [String] { resultTypes.flatMap { $0.kinds } }

  /// The result type stored under `kind`, or nil for a kind this version does not know.
  public static func resultType(named kind: String) -> (any ExperimentResult.Type)? {
    resultTypes.first { $0.kinds.contains(kind) }
  }
}
