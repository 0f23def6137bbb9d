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

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from .renderer import (
        render_markers as render_markers, join_markers as join_markers,
        MarkerRenderer as MarkerRenderer, gesture_positions as gesture_positions, JOINS as JOINS,
    )
    from .autoencoder import (
        Commands as Commands, MLPEncoder as MLPEncoder, ConvEncoder as ConvEncoder,
        StaticDecoder as StaticDecoder, GestureDecoder as GestureDecoder,
        DrawingAutoencoder as DrawingAutoencoder, init_parameters as init_parameters,
    )
    from .train import (
        DrawTrainer as DrawTrainer, BatchSampler as BatchSampler,
        reconstruction_metrics as reconstruction_metrics, random_affine as random_affine,
        batched_codes as batched_codes,
    )
    from .evaluate import (
        majority_accuracy as majority_accuracy, hungarian_accuracy as hungarian_accuracy,
        kmeans_scores as kmeans_scores, linear_probe_accuracy as linear_probe_accuracy,
        contingency as contingency, cluster_comparison as cluster_comparison,
    )
    from .clustering import (
        ClusterHead as ClusterHead, soft_assignments as soft_assignments,
        target_distribution as target_distribution,
    )
    from .experiment import (
        DrawConfig as DrawConfig, DrawResult as DrawResult, build_model as build_model,
        run_experiment as run_experiment, train_on as train_on,
    )
