import Foundation

/// Every experiment's result type by its name in experiment.json, so `StoredExperiment` (the
/// report, the demo) can read any folder back into its type.
public enum ExperimentCatalog {
  public static let resultTypes: [String: any ExperimentResult.Type] = [
    "reconstruct": ReconstructionResult.self,
    "compare": CompareResult.self,
    "factors": FactorResult.self,
    "noise": NoiseResult.self,
    "logit-shift": LogitCurveResult.self,
    "logit-scale": LogitCurveResult.self,
    "logit-noise": LogitCurveResult.self,
    "logit-topk": LogitCurveResult.self,
    "interpolate": InterpolationResult.self,
    "misclassified": MisclassifiedResult.self,
    "adversarial": AdversarialResult.self,
    "transforms": TransformResult.self,
    "iterate": IterationResult.self,
    "seeds": SeedStudyResult.self,
    "information": InformationResult.self,
    "depth-study": DepthStudyResult.self,
    "classes-study": ClassesStudyResult.self,
    "architecture-study": ArchitectureStudyResult.self,
  ]
}
