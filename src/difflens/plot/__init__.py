"""Figures and animations shared by every capability."""

from .animation import ffmpeg_available, save_animation

__all__ = ["save_animation", "ffmpeg_available"]
