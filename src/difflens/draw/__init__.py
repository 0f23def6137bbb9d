"""Differentiable inverse graphics: a Gaussian-marker renderer and an autoencoder that learns to draw.

- renderer: :func:`render_markers` / :class:`MarkerRenderer`, :func:`gesture_positions`
- autoencoder: encoders (:class:`MLPEncoder`, :class:`ConvEncoder`), parameter-free decoders
  (:class:`StaticDecoder`, :class:`GestureDecoder`), :class:`DrawingAutoencoder`
- train: :class:`DrawTrainer` on the shared engine, :class:`BatchSampler`, :func:`reconstruction_metrics`
- evaluate: :func:`majority_accuracy`, :func:`hungarian_accuracy`, :func:`kmeans_scores`,
  :func:`linear_probe_accuracy`
- clustering: IDEC fine-tuning pieces, :class:`ClusterHead`, :func:`soft_assignments`,
  :func:`target_distribution`
- experiment: :class:`DrawConfig`, :func:`run_experiment`, :func:`train_on` (MNIST/EMNIST folders)
"""

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "render_markers": "renderer", "join_markers": "renderer", "MarkerRenderer": "renderer",
    "gesture_positions": "renderer", "JOINS": "renderer",
    "Commands": "autoencoder", "MLPEncoder": "autoencoder", "ConvEncoder": "autoencoder",
    "StaticDecoder": "autoencoder", "GestureDecoder": "autoencoder", "DrawingAutoencoder": "autoencoder",
    "init_parameters": "autoencoder",
    "DrawTrainer": "train", "BatchSampler": "train", "reconstruction_metrics": "train", "random_affine": "train",
    "batched_codes": "train",
    "majority_accuracy": "evaluate", "hungarian_accuracy": "evaluate", "kmeans_scores": "evaluate",
    "linear_probe_accuracy": "evaluate", "contingency": "evaluate", "cluster_comparison": "evaluate",
    "ClusterHead": "clustering", "soft_assignments": "clustering", "target_distribution": "clustering",
    "DrawConfig": "experiment", "DrawResult": "experiment", "build_model": "experiment",
    "run_experiment": "experiment", "train_on": "experiment",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
