"""The project's own failures: each is told to the user in one line by the doit adapter."""

from __future__ import annotations


class MlopsError(Exception):
    """A failure the user can act on, told in one line."""


class ConfigError(MlopsError):
    """A mistake in conf/, pyproject.toml or a command-line word."""


class StepError(MlopsError):
    """A step that could not start, or that ended without doing what a step must."""
