"""``avwatch check`` (a file or a window of a live stream) and ``avwatch detectors``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from avwatch.cli.common import EXIT_DEFECTS, EXIT_OK, Commands, keys, seconds, writable
from avwatch.config import EngineConfig, load_model
from avwatch.detectors.base import available_detectors
from avwatch.errors import ConfigError
from avwatch.types import Severity, StreamInfo


def register(sub: Commands) -> None:
    c = sub.add_parser("check", help="quality-check a file or a window of a live stream")
    c.add_argument("source", help="path or URL (file, http(s), HLS, udp, rtp, srt, rtmp, rtsp)")
    c.add_argument("--duration", type=seconds, metavar="S", help="stop after S seconds of media")
    c.add_argument("--config", metavar="FILE", help="YAML configuration (thresholds)")
    c.add_argument(
        "--detectors", metavar="LIST", help="comma-separated detector keys (default: all)"
    )
    c.add_argument(
        "--analysis",
        choices=["full", "fast", "patrol"],
        help="which pictures are decoded (default: the config's, else full): every one; "
        "every one without deblocking; keyframes only, in full after a sign of trouble",
    )
    c.add_argument(
        "--profile",
        choices=["live", "qc"],
        help="operating point (default: the config's, else live): alarms for 24/7 "
        "monitoring, or file QC that reports every short defect",
    )
    c.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    c.add_argument("-o", "--output", metavar="FILE", help="write the JSON report to FILE")
    c.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML report: timeline with pictures, loudness, "
        "levels per channel, A/V offset, TR 101 290, settings",
    )
    c.add_argument(
        "--ts-report", action="store_true", help="print the ETSI TR 101 290 table (MPEG-TS inputs)"
    )
    c.add_argument(
        "--input-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="libavformat input option, e.g. listen=1 (receive RTMP), localaddr=IP "
        "(multicast interface), mode=listener (SRT); repeatable",
    )
    c.add_argument(
        "--fail-on",
        default="warning",
        choices=[s.value for s in Severity],
        help="exit 1 when a defect at or above this severity is found (default: warning)",
    )
    c.set_defaults(run=run_check)

    d = sub.add_parser("detectors", help="list detectors with their options")
    d.add_argument("--json", action="store_true", help="as JSON schema per detector")
    d.set_defaults(run=run_detectors)


def run_check(args: argparse.Namespace) -> int:
    from avwatch.analysis.check import check
    from avwatch.analysis.html_report import render_html
    from avwatch.analysis.recording import Recording
    from avwatch.analysis.report import build_report, print_report, print_ts_report, worst_severity

    config = load_model(EngineConfig, args.config)
    if args.analysis:
        config = config.model_copy(update={"analysis": args.analysis})
    if args.profile:
        config = config.model_copy(update={"profile": args.profile})
    output = writable(args.output) if args.output else None
    html_output = writable(args.html, "--html") if args.html else None
    recording = Recording() if html_output is not None else None
    input_options = {}
    for option in args.input_option:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise ConfigError(f"--input-option {option!r}: expected KEY=VALUE")
        input_options[key] = value
    err = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]checking"),
        BarColumn(),
        TextColumn("{task.fields[media]}"),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = progress.add_task("check", total=None, media="", speed="")
    clock: dict[str, float] = {}

    def on_info(info: StreamInfo) -> None:
        total = args.duration or info.duration_s
        progress.update(task, total=total)

    def on_progress(media_time: float) -> None:
        now = time.perf_counter()
        start = clock.setdefault("start", now)
        speed = media_time / (now - start) if now > start else 0.0
        progress.update(
            task, completed=media_time, media=f"{media_time:.1f} s", speed=f"{speed:.1f}x real time"
        )

    with progress:
        result = check(
            args.source,
            config,
            keys(args.detectors),
            duration_s=args.duration,
            on_progress=on_progress,
            on_info=on_info,
            input_options=input_options,
            recording=recording,
        )
    report = build_report(result)
    text = json.dumps(report, indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    if html_output is not None and recording is not None:
        html_output.write_text(render_html(report, result, recording), encoding="utf-8")
    if args.json:
        print(text)
    else:
        print_report(report, Console())
    if args.ts_report:
        print_ts_report(report, Console(stderr=args.json))
    worst = worst_severity(result)
    fail_on = Severity(args.fail_on)
    return EXIT_DEFECTS if worst is not None and worst.rank >= fail_on.rank else EXIT_OK


def run_detectors(args: argparse.Namespace) -> int:
    detectors = available_detectors()
    if args.json:
        print(
            json.dumps(
                {k: cls.Config.model_json_schema() for k, cls in detectors.items()}, indent=2
            )
        )
        return EXIT_OK
    console = Console()
    for key, cls in detectors.items():
        console.print(f"[bold]{key}[/bold] ({', '.join(sorted(cls.needs))}) — {cls.description}")
        for name, field in cls.Config.model_fields.items():
            bounds = _bounds(field.metadata)
            default = field.get_default(call_default_factory=True)
            console.print(
                f"    {name} = {default!r}{bounds}  {field.description or ''}", highlight=False
            )
        for profile, options in cls.profiles.items():
            shown = ", ".join(f"{k} = {v!r}" for k, v in options.items())
            console.print(f"    profile {profile}: {shown}", highlight=False)
    return EXIT_OK


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign}{value}")
    return f"  [{' '.join(parts)}]" if parts else ""
