"""The only importer of doit: dodo(), task dicts, up-to-date checks, the backend and loader plugins,
`doit why`, the reporter. Failures of the layers below arrive as `MlopsError`s and leave here as one line.
"""

from mlops.doit_adapter.dodo import TaskContext, config_task, dodo

__all__ = ["TaskContext", "config_task", "dodo"]
