"""Runnable studies, one per seed document, and their reports.

Add a study by adding a module here with a function decorated by
:func:`difflens.studies.registry.study`; it is discovered automatically.
"""

from .context import StudyContext
from .registry import Study, get_study, list_studies, study
from .runner import run_study, run_tour

__all__ = ["StudyContext", "Study", "study", "get_study", "list_studies", "run_study", "run_tour"]
