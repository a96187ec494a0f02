"""The ``avwatch`` command.

Exit codes: 0 no defect at or above ``--fail-on``; 1 defects; 2 unusable input,
bad configuration or usage error (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from avwatch import __version__
from avwatch.cli import bench, check, corpus, serve, synth
from avwatch.cli.common import EXIT_UNUSABLE
from avwatch.errors import AvwatchError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"avwatch {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (check, synth, corpus, bench, serve):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except AvwatchError as exc:
        print(f"avwatch: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print("avwatch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"avwatch: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
