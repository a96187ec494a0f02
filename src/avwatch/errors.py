"""Exceptions avwatch raises on purpose.

::

    AvwatchError                 base; the CLI prints its message, exit 2
    ├── InputError               the media cannot be used
    │   ├── InputNotFound        no such file
    │   ├── InputUnreachable     network source did not answer within its timeout
    │   └── InputUnreadable      opened, but not media avwatch can decode
    ├── ConfigError              bad YAML, unknown key, value out of bounds
    ├── ClusterUnreachable       the Ray cluster to serve on cannot be joined
    └── DetectorError            unknown detector, or a plugin that fails to load
"""

from __future__ import annotations

__all__ = [
    "AvwatchError",
    "ClusterUnreachable",
    "ConfigError",
    "DetectorError",
    "InputError",
    "InputNotFound",
    "InputUnreachable",
    "InputUnreadable",
    "reason",
]


class AvwatchError(Exception):
    """Base of every error avwatch raises deliberately."""


class InputError(AvwatchError):
    """The input cannot be used."""


class InputNotFound(InputError):
    pass


class InputUnreachable(InputError):
    pass


class InputUnreadable(InputError):
    pass


class ConfigError(AvwatchError):
    pass


class ClusterUnreachable(AvwatchError):
    pass


class DetectorError(AvwatchError):
    pass


def reason(exc: BaseException) -> str:
    """The short reason of an FFmpeg or OS error (its strerror), else its message."""
    return str(getattr(exc, "strerror", None) or exc)
