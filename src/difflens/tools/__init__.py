"""Small utilities shared across difflens."""

from .io import atomic_torch_save, atomic_write, atomic_write_text

__all__ = ["atomic_write", "atomic_write_text", "atomic_torch_save"]
