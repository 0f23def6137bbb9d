"""Neural processes measured against the exact Gaussian process they imitate.

>>> import torch
>>> from difflens.gp.neural import GPTaskSampler, ConvCNP, oracle_log_likelihood
>>> sampler = GPTaskSampler("se", torch.Generator().manual_seed(0), batch_size=2, n_context=5, n_target=10)
>>> t = sampler.sample()
>>> mean, std = ConvCNP()(t.x_context, t.y_context, t.x_target)
>>> tuple(mean.shape), bool((std > 0).all())
((2, 10, 1), True)
>>> oracle_log_likelihood(sampler.kernel, 0.02, *t).shape
torch.Size([2])

See docs/neural_process.md.
"""

from .evaluate import autoregressive_log_likelihood, autoregressive_sample, evaluate_model
from .models import CNP, AttentiveCNP, ConvCNP, LatentNP, UNet1d, init_parameters, mlp
from .oracle import gaussian_log_density, oracle_log_likelihood, oracle_predict
from .tasks import KERNEL_NAMES, DigitTaskSampler, GPTaskSampler, Tasks, task_kernel
from .training import NeuralProcessTrainer, log_likelihood_loss
from .validate import check_context

__all__ = [
    "CNP",
    "KERNEL_NAMES",
    "AttentiveCNP",
    "ConvCNP",
    "DigitTaskSampler",
    "GPTaskSampler",
    "LatentNP",
    "NeuralProcessTrainer",
    "Tasks",
    "UNet1d",
    "autoregressive_log_likelihood",
    "autoregressive_sample",
    "check_context",
    "evaluate_model",
    "gaussian_log_density",
    "init_parameters",
    "log_likelihood_loss",
    "mlp",
    "oracle_log_likelihood",
    "oracle_predict",
    "task_kernel",
]
