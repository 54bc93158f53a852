"""The project's own failures: each is told to the user in one line by the doit adapter."""

from __future__ import annotations

from mlops.common.secrets import redact


class MlopsError(Exception):
    """A failure the user can act on, told in one line (never with a secret value in it)."""

    def __str__(self) -> str:
        return redact(super().__str__())


class ConfigError(MlopsError):
    """A mistake in conf/, pyproject.toml or a command-line word."""


class StepError(MlopsError):
    """A step that could not start, or that ended without doing what a step must."""


class StepFailed(StepError):
    """The step's own code raised (or called sys.exit): `str()` is one line, `trace` the step's own frames."""

    def __init__(self, summary: str, trace: str) -> None:
        super().__init__(summary)
        self.trace = redact(trace)

    def __reduce__(self) -> tuple[type[StepFailed], tuple[str, str]]:
        """Travel whole from another process (a Dask worker): redacted again where it arrives."""
        return type(self), (self.args[0], self.trace)


class StateError(MlopsError):
    """The folder of outputs and state cannot be used as it is (a folder where a file goes, not writable)."""
