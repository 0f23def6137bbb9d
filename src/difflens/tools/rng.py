"""The one place a default random generator is made.

difflens never draws from torch's global generator: every random function
takes ``generator=``. Where the caller passes none, :func:`default_generator`
gives a fresh generator with a fixed seed, so results are reproducible and
independent of anything else the process draws.
"""

from __future__ import annotations

import torch

__all__ = ["default_generator", "DEFAULT_SEED"]

DEFAULT_SEED = 0


def default_generator(generator: torch.Generator | None = None, device: torch.device | str | None = None,
                      seed: int = DEFAULT_SEED) -> torch.Generator:
    """``generator`` itself, or a new one on ``device`` (default CPU) seeded with ``seed``.

    Parameters
    ----------
    generator : torch.Generator, optional
        Returned unchanged when given (its device must suit the caller's draws).
    device : torch.device or str, optional
        Device of the new generator. Default ``"cpu"``.
    seed : int
        Seed of the new generator. Default 0.

    Examples
    --------
    >>> g = default_generator()
    >>> float(torch.rand(1, generator=g)) == float(torch.rand(1, generator=default_generator()))
    True
    """
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        return generator
    g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
    g.manual_seed(int(seed))
    return g
