"""Image-quality metrics: how different two images are (plenoptic 1.4.0's ``plenoptic.metric``).

- :func:`mse`: mean squared error per image and channel;
- :func:`ssim`, :func:`ssim_map`, :func:`ms_ssim`: (multi-scale) structural similarity;
- :func:`normalized_laplacian_pyramid`, :func:`nlpd`: the normalised Laplacian pyramid distance;
- :func:`model_metric`, :func:`model_metric_factory`, :class:`NLP`: distances in a model's space.

All take ``(batch, channel, height, width)`` tensors whose batch and channel dimensions
broadcast, return ``(batch, channel)``, are differentiable and run on the inputs' device.
Values outside [0, 1] give a ``UserWarning`` (as plenoptic); inputs that are not 4-D, of
different heights/widths, of non-broadcastable batch/channel sizes or different dtypes
raise ``ValueError`` naming the problem (:func:`difflens.tools.validate.check_image_pair`).
"""

from .model_space import NLP, model_metric, model_metric_factory
from .naive import mse
from .normalized_laplacian import nlpd, normalized_laplacian_pyramid
from .structural import ms_ssim, ssim, ssim_map

__all__ = ["NLP", "model_metric", "model_metric_factory", "ms_ssim", "mse", "nlpd",
           "normalized_laplacian_pyramid", "ssim", "ssim_map"]
