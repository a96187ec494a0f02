"""What the commands share: exit codes and the argument types that refuse bad input."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TypeAlias

from avwatch.errors import ConfigError

__all__ = [
    "EXIT_DEFECTS",
    "EXIT_OK",
    "EXIT_UNUSABLE",
    "Commands",
    "keys",
    "seconds",
    "writable",
]

EXIT_OK, EXIT_DEFECTS, EXIT_UNUSABLE = 0, 1, 2

# What each command module registers its parsers on (``register(commands)``).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def seconds(text: str) -> float:
    """A length of time for argparse: a check of nothing must not pass as clean."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 seconds")
    return value


def keys(text: str | None) -> list[str] | None:
    if text is None:
        return None  # all of them
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:  # a check by no detector must not pass as clean
        raise ConfigError(f"--detectors {text!r}: name at least one (e.g. black,freeze)")
    return keys


def writable(path: str, flag: str = "-o") -> Path:
    """Where the report goes, refused before the check rather than after it."""
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory")
    if not out.parent.is_dir():
        raise ConfigError(f"{flag} {path}: no directory {out.parent}")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"{flag} {path}: not writable")
    return out
