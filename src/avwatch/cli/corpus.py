"""``avwatch corpus build`` (the impaired-media corpus) and ``avwatch eval`` (its score)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from avwatch.cli.common import EXIT_DEFECTS, EXIT_OK, EXIT_UNUSABLE, Commands, keys
from avwatch.config import EngineConfig, load_model
from avwatch.errors import ConfigError


def register(sub: Commands) -> None:
    cp = sub.add_parser("corpus", help="the impaired-media corpus with exact truth")
    csub = cp.add_subparsers(dest="corpus", required=True)
    cb = csub.add_parser("build", help="write the corpus (media + NAME.truth.json) into DIR")
    cb.add_argument("directory")
    cb.add_argument("--quick", action="store_true", help="small formats only (CI)")
    cb.add_argument(
        "--set",
        dest="corpus_set",
        default="tuning",
        choices=["tuning", "heldout", "clean", "all"],
        help="tuning (default: what the detectors are tuned on), heldout (the same defects "
        "in recordings never tuned on), clean (over an hour without defects: false alarms "
        "per hour), or all three into DIR/tuning, DIR/heldout, DIR/clean",
    )
    cb.add_argument(
        "--resume",
        action="store_true",
        help="keep the cases already in DIR with the same spec (go on with a stopped build)",
    )
    cb.set_defaults(run=run_corpus)

    e = sub.add_parser("eval", help="score the detectors on a corpus directory")
    e.add_argument("directory")
    e.add_argument("--config", metavar="FILE")
    e.add_argument("--detectors", metavar="LIST")
    e.add_argument(
        "--tolerance",
        type=float,
        default=0.5,
        metavar="S",
        help="intervals match when they overlap once widened by S seconds",
    )
    e.add_argument(
        "--floors",
        metavar="FILE",
        help='JSON {"f1": {type: minimum F1}, "av_offset_error_median_ms": {content: ceiling}}; '
        "exit 1 when a type falls below its floor or a content over its ceiling",
    )
    e.add_argument(
        "--analysis",
        choices=["full", "fast", "patrol"],
        help="score this analysis tier (patrol: on events longer than two keyframe spacings); "
        "other than full, also run full and say how far each event's dates are from its",
    )
    e.add_argument(
        "--profile", choices=["live", "qc"], help="operating point to score (default: live)"
    )
    e.add_argument(
        "--peer", choices=["ffmpeg"], help="also score FFmpeg's detection filters on the same files"
    )
    e.add_argument("--json", action="store_true")
    e.set_defaults(run=run_eval)


def run_corpus(args: argparse.Namespace) -> int:
    from avwatch.lab.corpus import CORPUS_SETS, build

    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory")
    sets = CORPUS_SETS if args.corpus_set == "all" else (args.corpus_set,)
    for corpus_set in sets:
        into = directory / corpus_set if args.corpus_set == "all" else directory
        written = build(into, quick=args.quick, corpus_set=corpus_set, resume=args.resume)
        print(f"wrote {len(written)} files with their truth to {into}")
    return EXIT_OK


def run_eval(args: argparse.Namespace) -> int:
    from avwatch.lab.corpus import CORPUS_SETS

    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"avwatch: error: {directory}: not a directory", file=sys.stderr)
        return EXIT_UNUSABLE
    config = load_model(EngineConfig, args.config)
    if args.analysis:
        config = config.model_copy(update={"analysis": args.analysis})
    if args.profile:
        config = config.model_copy(update={"profile": args.profile})
    # A directory of sets (corpus build --set all): each set is scored on its own,
    # the held-out one never mixed with what was tuned.
    sets = [directory / s for s in CORPUS_SETS if (directory / s).is_dir()]
    reports = {one.name: _eval_one(one, args, config) for one in sets or [directory]}
    if args.json:
        print(json.dumps({"sets": reports} if sets else reports[directory.name], indent=2))
    floors = json.loads(Path(args.floors).read_text()) if args.floors else None
    if floors is not None and any([_below_floors(r, floors) for r in reports.values()]):
        return EXIT_DEFECTS  # every set's shortfalls said, not only the first's
    return EXIT_OK


def _eval_one(directory: Path, args: argparse.Namespace, config: EngineConfig) -> dict[str, Any]:
    """The report of one corpus directory (its peer's under ``peer``), printed unless
    JSON was asked for."""
    from avwatch.lab.evaluate import dating_against, evaluate_dir

    result = evaluate_dir(directory, config, keys(args.detectors), tolerance_s=args.tolerance)
    report = result.as_dict()
    if config.analysis != "full":
        full = config.model_copy(update={"analysis": "full"})
        reference = evaluate_dir(directory, full, keys(args.detectors), tolerance_s=args.tolerance)
        report["dating_vs_full"] = dating_against(reference, result)
    peer = None
    if args.peer:
        peer = evaluate_dir(directory, config, tolerance_s=args.tolerance, peer=args.peer).as_dict()
    if peer is not None:
        report["peer"] = {args.peer: peer}
    if not args.json:
        console = Console()
        table = Table(title=f"avwatch on {directory} (tolerance {args.tolerance:g} s)")
        for column in (
            "type",
            "TP",
            "FP",
            "miss",
            "precision",
            "recall",
            "F1",
            "onset median s",
            "onset p90 s",
            "false alarms/h",
        ):
            table.add_column(column, justify="left" if column == "type" else "right")
        for type_, s in report["types"].items():
            table.add_row(
                type_,
                str(s["tp"]),
                str(s["fp"]),
                str(s["fn"]),
                f"{s['precision']:.3f}",
                f"{s['recall']:.3f}",
                f"{s['f1']:.3f}",
                str(s["onset_error_median_s"]),
                str(s["onset_error_p90_s"]),
                str(s["false_alarms_per_hour"]),
            )
        console.print(table)
        console.print(
            f"{report['media_hours']:.3f} h of media: "
            f"{report['false_alarms_per_hour']} false alarms per hour (all types)"
        )
        if "nothing_found" in report:
            console.print(
                "nothing found or to find, so no false alarm: "
                + ", ".join(report["nothing_found"]),
                highlight=False,
            )
        if "av_offset" in report:
            _print_offsets(console, report["av_offset"])
        if "dating_vs_full" in report:
            _print_dating(console, report["dating_vs_full"], config.analysis)
        if peer is not None:
            _print_side_by_side(console, report, peer, args.peer)
        for name, problems in report["files"].items():
            for kind in ("missed", "false_alarms"):
                label = "miss" if kind == "missed" else "false alarm"
                for ev in problems[kind]:
                    console.print(
                        f"  {name}: {label} {ev['type']} {ev['start']:.3f}-{ev['end']}",
                        highlight=False,
                    )
    return report


def _below_floors(report: dict[str, Any], floors: dict[str, Any]) -> bool:
    """Say every type whose F1 is under its floor (``f1``) and every kind of content
    whose median A/V offset error is over its ceiling (``av_offset_error_median_ms``)."""
    failed = False
    for type_, ceiling in floors.get("false_alarms_per_hour", {}).items():
        rate = (
            report["false_alarms_per_hour"]
            if type_ == "all"
            else report["types"].get(type_, {}).get("false_alarms_per_hour", 0.0)
        )
        if rate is not None and rate > ceiling:
            print(
                f"avwatch: {type_}: {rate} false alarms per hour, over {ceiling}", file=sys.stderr
            )
            failed = True
    for type_, floor in floors.get("f1", {}).items():
        f1 = report["types"].get(type_, {}).get("f1")
        if f1 is None or f1 < floor:  # a floor asks the corpus to measure it, too
            said = "nothing to find or found, no F1" if f1 is None else f"F1 {f1}"
            print(f"avwatch: {type_}: {said} below the floor {floor}", file=sys.stderr)
            failed = True
    for content, ceiling in floors.get("av_offset_error_median_ms", {}).items():
        median = report.get("av_offset", {}).get(content, {}).get("error_median_ms")
        if median is None or median > ceiling:
            print(
                f"avwatch: A/V offset on {content}: median error {median} ms over {ceiling} ms",
                file=sys.stderr,
            )
            failed = True
    return failed


def _print_dating(console: Console, dating: dict[str, Any], tier: str) -> None:
    table = Table(title=f"{tier}: event dates against full analysis's (same file and type)")
    columns = ("type", "pairs", "start median s", "start max s", "end median s", "end max s")
    for column in (*columns, "start within 1 s"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for type_, d in dating.items():
        table.add_row(
            type_,
            str(d["pairs"]),
            str(d["start_median_s"]),
            str(d["start_max_s"]),
            str(d["end_median_s"]),
            str(d["end_max_s"]),
            f"{d['within_1s']:.0%}",
        )
    console.print(table)


def _print_offsets(console: Console, offsets: dict[str, Any]) -> None:
    table = Table(title="A/V offset estimates against the true offset")
    columns = (
        *("content", "files", "estimates", "known share"),
        *("median ms", "p90 ms", "max ms", "wrong > 40 ms"),
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "content" else "right")
    for content, s in offsets.items():
        table.add_row(
            content,
            str(s["files"]),
            str(s["estimates"]),
            f"{s['known_share']:.3f}",
            str(s["error_median_ms"]),
            str(s["error_p90_ms"]),
            str(s["error_max_ms"]),
            "-" if s["wrong_share"] is None else f"{s['wrong_share']:.1%}",
        )
    console.print(table)


def _print_side_by_side(
    console: Console, ours: dict[str, Any], peer: dict[str, Any], name: str
) -> None:
    table = Table(title=f"avwatch vs {name}")
    table.add_column("type")
    for who in ("avwatch", name):
        for metric in ("P", "R", "F1"):
            table.add_column(f"{who} {metric}", justify="right")
    for type_ in sorted(set(ours["types"]) | set(peer["types"])):
        row = [type_]
        for scores in (ours["types"].get(type_), peer["types"].get(type_)):
            if scores is None:
                row += ["-", "-", "-"]
            else:
                row += [
                    f"{scores['precision']:.3f}",
                    f"{scores['recall']:.3f}",
                    f"{scores['f1']:.3f}",
                ]
        table.add_row(*row)
    console.print(table)
