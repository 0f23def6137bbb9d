"""Input and model checks shared by the synthesis methods, with messages that say what to fix.

One module for every check :class:`~difflens.synthesize.Metamer` and
:class:`~difflens.synthesize.Eigendistortion` make on their inputs:

- :func:`check_image`: type, dtype family and shape only (cheap; models call it in ``forward``);
- :func:`check_synthesis_image`: an image synthesis targets or starts from: float32/float64,
  shape, finite values, optionally inside a range;
- :func:`check_range` / :func:`check_in_range`: a ``(low, high)`` pair and values inside it
  (NaN never passes);
- :func:`check_finite`: no NaN or inf, with a count of each;
- :func:`validate_model`: a model can be probed (returns a tensor, keeps device and dtype,
  lets gradients reach the input, finite, deterministic, no learnable parameters).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .rng import default_generator

__all__ = ["SYNTHESIS_DTYPES", "check_finite", "check_image", "check_image_pair", "check_in_range", "check_range",
           "check_synthesis_image", "remove_grad", "validate_input", "validate_metric", "validate_model"]

#: Real dtypes synthesis runs in: half precision cannot hold the small loss changes and
#: gradients the optimisers and eigensolvers work with.
SYNTHESIS_DTYPES = (torch.float32, torch.float64)

_HALF = (torch.float16, torch.bfloat16, torch.complex32)

_FLOAT_FAMILIES = {
    torch.float16: (torch.float16, torch.complex32),
    torch.complex32: (torch.float16, torch.complex32),
    torch.bfloat16: (torch.bfloat16,),
    torch.float32: (torch.float32, torch.complex64),
    torch.complex64: (torch.float32, torch.complex64),
    torch.float64: (torch.float64, torch.complex128),
    torch.complex128: (torch.float64, torch.complex128),
}


def check_image(x: object, name: str = "image", *, ndim: int | None = 4, allow_complex: bool = False,
                batch_size: int | None = None) -> Tensor:
    """Raise a clear error unless ``x`` is a ``ndim``-D floating-point tensor; return ``x``.

    Cheap (no pass over the values): models call it on every input.

    Parameters
    ----------
    x
        The object to check; images are ``(batch, channel, height, width)`` by default.
    name
        What to call ``x`` in the message (e.g. ``"initial_image"``).
    ndim
        Required number of dimensions (default 4; ``None`` accepts any).
    allow_complex
        Accept complex dtypes too (default ``False``).
    batch_size
        If given, the required size of dimension 0.

    Raises
    ------
    TypeError
        If ``x`` is not a tensor, or its dtype is not floating point (or complex when allowed).
    ValueError
        If ``x`` has the wrong number of dimensions, an empty dimension, or the wrong batch size.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    ok = x.is_floating_point() or (allow_complex and x.is_complex())
    if not ok:
        kinds = "floating-point or complex" if allow_complex else "floating-point"
        raise TypeError(f"{name} must have a {kinds} dtype (e.g. torch.float32), got {x.dtype}; "
                        f"convert it with {name}.float() (and rescale 0-255 images to [0, 1])")
    if ndim is not None and x.ndim != ndim:
        hint = " (batch, channel, height, width)" if ndim == 4 else ""
        extra = "; add batch/channel dimensions with x[None, None]" if ndim == 4 and x.ndim == 2 else ""
        raise ValueError(f"{name} must be {ndim}-D{hint}, got shape {tuple(x.shape)}{extra}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if batch_size is not None and x.shape[0] != batch_size:
        raise ValueError(f"{name} must have batch size {batch_size}, got shape {tuple(x.shape)}")
    return x


def check_finite(x: Tensor, name: str = "image") -> Tensor:
    """Raise ``ValueError`` naming how many NaN and inf values ``x`` holds; return ``x``.

    One pass over ``x`` and one host sync: call it once per input, not per step.
    """
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return x
    n_nan = int(torch.isnan(x).sum())
    n_inf = int(x.numel() - int(finite.sum()) - n_nan)
    parts = [f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "inf")) if n]
    raise ValueError(f"{name} contains {' and '.join(parts)} value(s) (of {x.numel()}); "
                     "every value must be finite")


def check_range(allowed_range: object, name: str = "allowed_range") -> tuple[float, float]:
    """``allowed_range`` as a pair of finite floats ``(low, high)`` with ``low < high``.

    Raises
    ------
    ValueError
        Not a pair of numbers, not finite, or ``low >= high``.
    """
    try:
        lo, hi = (float(v) for v in allowed_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {allowed_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {allowed_range!r}")
    if not lo < hi:
        raise ValueError(f"{name} must have low < high, got {allowed_range!r}")
    return lo, hi


def check_in_range(x: Tensor, allowed_range: tuple[float, float], name: str = "image") -> Tensor:
    """Raise ``ValueError`` unless every value of ``x`` lies in ``allowed_range``; return ``x``.

    NaN never lies in a range (``x.min()`` of a tensor holding NaN compares false
    with everything, so a plain min/max test would let it through).
    """
    lo, hi = allowed_range
    if bool(torch.isnan(x).any()):
        raise ValueError(f"{name} contains NaN, which lies in no range (allowed_range {allowed_range})")
    xmin, xmax = float(x.min()), float(x.max())
    if xmin < lo or xmax > hi:
        raise ValueError(f"{name} values lie in [{xmin:.4g}, {xmax:.4g}], outside allowed_range "
                         f"{tuple(allowed_range)}; rescale it (difflens.tools.rescale) or widen the range")
    return x


def check_synthesis_image(x: object, name: str = "image", *, ndim: int | None = None, min_ndim: int = 1,
                          batch_size: int | None = None,
                          allowed_range: tuple[float, float] | None = None) -> Tensor:
    """Check an image that synthesis targets or starts from; return it.

    Parameters
    ----------
    x
        The tensor to check.
    name
        What to call it in messages.
    ndim
        Required number of dimensions (``None``: any number >= ``min_ndim``).
    min_ndim
        Fewest dimensions accepted when ``ndim`` is ``None`` (2 means "a batch dimension first").
    batch_size
        Required size of dimension 0, if given.
    allowed_range
        ``(low, high)`` every value must lie in (``None``: no range check).

    Raises
    ------
    TypeError
        Not a tensor; a dtype other than float32/float64 (half precision, integers, complex).
    ValueError
        Wrong number of dimensions, empty, wrong batch size, NaN or inf values, values outside
        ``allowed_range``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype in _HALF:
        raise TypeError(f"{name} has dtype {x.dtype}; synthesis runs in float32 or float64 (half "
                        "precision cannot hold the small loss changes and gradients it works with): "
                        f"convert it with {name}.float() or {name}.double()")
    if x.dtype not in SYNTHESIS_DTYPES:
        raise TypeError(f"{name} must have a floating-point dtype, float32 or float64, got {x.dtype}; "
                        f"convert it with {name}.float() (and rescale 0-255 images to [0, 1])")
    if ndim is not None:
        check_image(x, name, ndim=ndim)
    elif x.ndim < min_ndim:
        what = "a batch dimension first: (B, ...) e.g. (B, C, H, W)" if min_ndim == 2 else f"{min_ndim}+ dimensions"
        raise ValueError(f"{name} must have {what}; got shape {tuple(x.shape)}")
    check_image(x, name, ndim=None, batch_size=batch_size)
    check_finite(x, name)
    if allowed_range is not None:
        check_in_range(x, allowed_range, name)
    return x


def check_image_pair(img1: object, img2: object, func_name: str = "metric", *, ndim: int | None = 4,
                     min_ndim: int = 2) -> tuple[int, ...]:
    """Check two images an image-quality metric compares; return their broadcast shape.

    Parameters
    ----------
    img1, img2
        Floating-point tensors, ``(batch, channel, height, width)`` when ``ndim=4``.
    func_name
        The metric's name, for the messages (e.g. ``"SSIM"``).
    ndim
        Required number of dimensions (``None``: any number >= ``min_ndim``).
    min_ndim
        Fewest dimensions accepted when ``ndim`` is ``None``.

    Raises
    ------
    TypeError
        Not tensors, or not floating point.
    ValueError
        Wrong number of dimensions ("should have four dimensions"), different heights or widths,
        other dimensions that differ where neither is 1 (they broadcast), different dtypes.
    """
    for x, name in ((img1, "img1"), (img2, "img2")):
        check_image(x, name, ndim=None)
    a, b = img1.shape, img2.shape  # type: ignore[union-attr]
    if ndim is not None and not (len(a) == len(b) == ndim):
        raise ValueError(f"{func_name}: Input images should have four dimensions: (batch, channel, height, "
                         f"width); got img1 {tuple(a)} and img2 {tuple(b)}" if ndim == 4 else
                         f"{func_name}: input images must be {ndim}-D, got {tuple(a)} and {tuple(b)}")
    if ndim is None and min(len(a), len(b)) < min_ndim:
        raise ValueError(f"{func_name}: input images need at least {min_ndim} dimensions (..., height, width), "
                         f"got img1 {tuple(a)} and img2 {tuple(b)}")
    if a[-2:] != b[-2:]:
        raise ValueError(f"{func_name}: img1 and img2 must have the same height and width, got "
                         f"{tuple(a[-2:])} and {tuple(b[-2:])}")
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    if any(i != j and 1 not in (i, j) for i, j in zip(pa, pb)):
        raise ValueError(f"{func_name}: Either img1 and img2 should have the same number of elements in each "
                         "dimension, or one of them should be 1 (batch and channel broadcast); got shapes "
                         f"{tuple(a)} and {tuple(b)}")
    shape = tuple(max(i, j) if min(i, j) != 0 else 0 for i, j in zip(pa, pb))
    if img1.dtype != img2.dtype:  # type: ignore[union-attr]
        raise ValueError(f"{func_name}: Input images must have same dtype, got {img1.dtype} and "  # type: ignore[union-attr]
                         f"{img2.dtype}; convert one with .to(other.dtype)")  # type: ignore[union-attr]
    return shape


def validate_input(input_tensor: Tensor, no_batch: bool = False, allowed_range: tuple[float, float]
                   | None = (0.0, 1.0)) -> None:
    """Check that ``input_tensor`` can be synthesised from (plenoptic's ``validate_input``).

    Raises ``TypeError`` for non-float/complex dtypes, ``ValueError`` for NaN or inf
    values and, when ``no_batch`` is set, a batch dimension other than 1. Warns
    (``UserWarning``) if the tensor is not 4-D or has values outside ``allowed_range``
    (``None``: no check).
    """
    check_image(input_tensor, "input_tensor", ndim=None, allow_complex=True)
    check_finite(input_tensor, "input_tensor")
    if input_tensor.ndim != 4:
        warnings.warn(f"input_tensor has shape {tuple(input_tensor.shape)}; synthesis methods are "
                      "tested on 4-D (batch, channel, height, width) inputs", stacklevel=2)
    if no_batch and input_tensor.ndim > 1 and input_tensor.shape[0] != 1:
        raise ValueError(f"input_tensor batch dimension must be 1, got shape {tuple(input_tensor.shape)}")
    if allowed_range is not None and not input_tensor.is_complex():
        lo, hi = input_tensor.min().item(), input_tensor.max().item()
        if lo < allowed_range[0] or hi > allowed_range[1]:
            warnings.warn(f"input_tensor range is ({lo:.4g}, {hi:.4g}), outside {allowed_range}; "
                          "synthesis should still work but is tested on that range", stacklevel=2)


def validate_metric(metric: Callable[[Tensor, Tensor], Tensor], image_shape: Sequence[int] | None = None,
                    image_dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                    generator: torch.Generator | None = None, n_pairs: int = 5, name: str = "metric") -> None:
    """Check that ``metric(x, y)`` is a distance MAD competition can use (plenoptic's ``validate_metric``).

    On uniform random images of ``image_shape`` (default ``(1, 1, 16, 16)``) drawn from
    ``generator`` (default :func:`~difflens.tools.rng.default_generator`): the call works
    and returns a one-element tensor; it is at most 5e-7 for two identical images; it is
    non-negative on ``n_pairs`` pairs of different images; and it keeps the gradient of its
    second argument.

    Raises
    ------
    TypeError
        ``metric`` is not callable, fails on two tensors, or does not return a tensor.
    ValueError
        More than one output element, a value above 5e-7 for identical images, a negative
        value, or an output that does not depend on the image differentiably.
    """
    if not callable(metric):
        raise TypeError(f"{name} should be callable and accept two tensors as input, got {type(metric).__name__}")
    shape = (1, 1, 16, 16) if image_shape is None else tuple(int(s) for s in image_shape)
    gen = default_generator(generator, device=device)
    img = torch.rand(shape, generator=gen, dtype=image_dtype, device=device)
    try:
        same = metric(img, img)
    except Exception as err:
        raise TypeError(f"{name} should be callable and accept two tensors as input; calling it on two "
                        f"{tuple(shape)} images raised {type(err).__name__}: {err}") from err
    if not isinstance(same, Tensor):
        raise TypeError(f"{name} should return a torch.Tensor, got {type(same).__name__}")
    if same.numel() != 1:
        raise ValueError(f"{name} should return a scalar value but output had shape {tuple(same.shape)} "
                         "(average it over the batch, e.g. lambda x, y: metric(x, y).mean())")
    if not float(same) <= 5e-7:
        raise ValueError(f"{name} should return <= 5e-7 on two identical images but got {float(same)}: MAD "
                         "competition needs a distance (0 for identical images), e.g. 1 - ssim")
    for _ in range(n_pairs):
        other = torch.rand(shape, generator=gen, dtype=image_dtype, device=device)
        value = float(metric(img, other))
        if not value >= 0:
            raise ValueError(f"{name} should always return non-negative numbers! got {value} on two "
                             "random images")
    other = other.clone().requires_grad_(True)
    out = metric(img, other)
    if not (isinstance(out, Tensor) and out.requires_grad):
        raise ValueError(f"{name} does not keep the gradient of its input (it detaches it, uses numpy or "
                         "torch.no_grad): MAD competition optimises through it")


def remove_grad(model: torch.nn.Module) -> None:
    """Detach every parameter and buffer of ``model`` in place (``requires_grad=False``).

    Models probed by synthesis are fixed; this avoids computing gradients for them.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for t in (*model.parameters(), *model.buffers()):
        if t.requires_grad:
            t.detach_()


def _call(model: Callable[[Tensor], object], img: Tensor, what: str) -> object:
    try:
        return model(img)
    except Exception as err:
        hint = ""
        if img.ndim != 4:
            hint = (f" Models usually take 4-D (batch, channel, height, width) images; this input is "
                    f"{img.ndim}-D: add dimensions with image[None, None] (or image[None]).")
        raise ValueError(f"model raised {type(err).__name__} when called on {what} of shape "
                         f"{tuple(img.shape)}, dtype {img.dtype}, device {img.device}: {err}.{hint} "
                         "If it casts the input to numpy or another type, keep every "
                         "computation in torch") from err


def validate_model(model: Callable[[Tensor], Tensor], image_shape: Sequence[int] | None = None,
                   image_dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                   generator: torch.Generator | None = None, *, same_batch: bool = False) -> None:
    """Check that ``model`` can be probed by metamer / eigendistortion synthesis.

    Runs ``model`` on a uniform random test image of ``image_shape`` (default
    ``(1, 1, 16, 16)``) drawn from ``generator`` (default
    :func:`~difflens.tools.rng.default_generator`, so the global RNG is never touched),
    and checks, in this order:

    - the call succeeds and returns a ``torch.Tensor`` (``ValueError``);
    - the output stays on the input's device (``RuntimeError``);
    - the output carries no gradient for an input without one, i.e. no learnable
      parameter is used (``ValueError``: call :func:`remove_grad`);
    - the output keeps the input's precision (``TypeError``; complex outputs of
      matching precision are fine);
    - with ``same_batch``, the output's first dimension is the input's batch (``ValueError``);
    - the output is finite (``ValueError``: the model returns NaN or inf);
    - the output keeps the gradient of an input with one (``ValueError``: the model detaches
      its output, e.g. ``.detach()``, numpy or ``torch.no_grad`` in ``forward``), and the
      backward pass reaches the input with finite values (``ValueError``);
    - two calls on the same input agree, i.e. the model is deterministic (``ValueError``:
      e.g. dropout in training mode).

    Warns (``UserWarning``) if ``model`` is an ``nn.Module`` in training mode. Outputs
    of any number of dimensions are accepted.
    """
    if not callable(model):
        raise TypeError(f"model must be callable (e.g. a torch.nn.Module), got {type(model).__name__}")
    if image_dtype not in _FLOAT_FAMILIES:
        raise TypeError(f"image_dtype must be a float or complex dtype, got {image_dtype}")
    shape = (1, 1, 16, 16) if image_shape is None else tuple(int(s) for s in image_shape)
    device = torch.device(device)
    generator = default_generator(generator, device=device)
    real_dtype = _FLOAT_FAMILIES[image_dtype][0]
    img = torch.rand(shape, generator=generator, dtype=real_dtype, device=device).to(image_dtype)

    out = _call(model, img, "a test image")
    if not isinstance(out, Tensor):
        raise ValueError(f"model must return a torch.Tensor, got {type(out).__name__}; are all "  # noqa: TRY004
                         "computations performed using torch?")
    if out.device != img.device:
        raise RuntimeError(f"model changes the device of its input: {img.device} in, "
                           f"{out.device} out")
    if out.requires_grad:
        names = []
        if isinstance(model, torch.nn.Module):
            names = [n for n, p in model.named_parameters() if p.requires_grad]
        which = f" (trainable: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
        raise ValueError("model adds a gradient to an input without one: at least one of its "
                         f"parameters is learnable{which}. Call difflens.tools.remove_grad(model)")
    if out.dtype not in _FLOAT_FAMILIES[image_dtype]:
        raise TypeError(f"model changes the precision of its input: {image_dtype} in, {out.dtype} "
                        "out. Build the model in the input's dtype (e.g. model.to(torch.float64))")
    if same_batch and (out.ndim == 0 or out.shape[0] != shape[0]):
        raise ValueError(f"model output has shape {tuple(out.shape)} for an input of batch {shape[0]}: "
                         "its first dimension must be the batch")
    if not bool(torch.isfinite(out).all()):
        raise ValueError("model returns NaN or inf on a uniform random image in [0, 1)")
    grad_img = img.clone().requires_grad_(True)
    out_g = _call(model, grad_img, "a test image requiring grad")
    if not isinstance(out_g, Tensor) or not out_g.requires_grad:
        raise ValueError("model detaches its output from its input: no gradient reaches the input, "
                         "so synthesis could never change the image (model strips the gradient: do "
                         "you detach() it, use torch.no_grad, or numpy / non-torch code, in forward?)")
    (grad,) = torch.autograd.grad(out_g.abs().sum() if out_g.is_complex() else out_g.sum(),
                                  grad_img, allow_unused=True)
    if grad is None:
        raise ValueError("the model output does not depend on the input through autograd "
                         "(the gradient with respect to the input is None)")
    if not torch.isfinite(grad).all():
        raise ValueError("the gradient of the model output with respect to the input is not "
                         "finite (NaN/inf) on a uniform random image")
    again = _call(model, img, "the same test image a second time")
    tol = 1e-6 if out.dtype in (torch.float64, torch.complex128) else 1e-4
    if not isinstance(again, Tensor) or again.shape != out.shape or not torch.allclose(
            again, out, rtol=tol, atol=tol * float(out.abs().max().clamp_min(1))):
        raise ValueError("model is not deterministic: two calls on the same input differ. Call "
                         "model.eval() (dropout, batch-norm statistics) and avoid random draws "
                         "in forward")
    if isinstance(model, torch.nn.Module) and model.training:
        warnings.warn("model is in training mode; you probably want model.eval()", stacklevel=2)
