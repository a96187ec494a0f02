"""The ``avwatch`` command.

Exit codes: 0 no defect at or above ``--fail-on``; 1 defects; 2 unusable input,
bad configuration or usage error (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from avwatch import __version__
from avwatch.config import load_config
from avwatch.detectors.base import available_detectors
from avwatch.errors import AvwatchError, ConfigError
from avwatch.types import Severity, StreamInfo

# avwatch.lab.synth's Picture and Sound (importing it here would cost every command a second).
SYNTH_PICTURES = (
    "moving",
    "dark",
    "static_ticker",
    "static_small_motion",
    "talking_face",
    "flash",
    "cuts",
)
SYNTH_SOUNDS = ("tone", "music", "speech", "recorded", "beeps", "impacts", "none")

log = logging.getLogger("avwatch")

EXIT_OK, EXIT_DEFECTS, EXIT_UNUSABLE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avwatch", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"avwatch {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="quality-check a file or a window of a live stream")
    c.add_argument("source", help="path or URL (file, http(s), HLS, udp, rtp, srt, rtmp, rtsp)")
    c.add_argument("--duration", type=_seconds, metavar="S", help="stop after S seconds of media")
    c.add_argument("--config", metavar="FILE", help="YAML configuration (thresholds)")
    c.add_argument(
        "--detectors", metavar="LIST", help="comma-separated detector keys (default: all)"
    )
    c.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    c.add_argument("-o", "--output", metavar="FILE", help="write the JSON report to FILE")
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

    d = sub.add_parser("detectors", help="list detectors with their options")
    d.add_argument("--json", action="store_true", help="as JSON schema per detector")

    s = sub.add_parser("synth", help="make a test clip with defects at known places")
    s.add_argument("output", help="output file; the container follows the extension")
    s.add_argument("--duration", type=float, default=10.0, metavar="S")
    s.add_argument("--size", default="640x360", metavar="WxH")
    s.add_argument("--fps", default="25", help="frame rate, e.g. 25 or 30000/1001")
    s.add_argument("--video-codec", default="libx264")
    s.add_argument("--audio-codec", default="aac")
    s.add_argument("--picture", default="moving", choices=SYNTH_PICTURES)
    s.add_argument("--sound", default="music", choices=SYNTH_SOUNDS)
    s.add_argument("--sound-file", metavar="FILE", help="the recording for --sound recorded")
    s.add_argument("--noise", type=float, default=0.0, metavar="LEVELS", help="picture grain")
    s.add_argument("--interlaced", action="store_true")
    s.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="TYPE:START-END[:k=v]",
        help="e.g. black:3-4, silence:5-8:channel=1 (repeatable)",
    )
    s.add_argument("--truth", metavar="FILE", help="write the truth events as JSON")

    cp = sub.add_parser("corpus", help="the impaired-media corpus with exact truth")
    csub = cp.add_subparsers(dest="corpus", required=True)
    cb = csub.add_parser("build", help="write the corpus (media + NAME.truth.json) into DIR")
    cb.add_argument("directory")
    cb.add_argument("--quick", action="store_true", help="small formats only (CI)")

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
        "--peer", choices=["ffmpeg"], help="also score FFmpeg's detection filters on the same files"
    )
    e.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    t = bsub.add_parser("throughput", help="decode-only vs full-pipeline frames per CPU-second")
    t.add_argument("source")
    t.add_argument("--config", metavar="FILE")
    t.add_argument("--detectors", metavar="LIST")
    t.add_argument("--repeat", type=int, default=3, help="runs per stage; the best counts")
    t.add_argument("--json", action="store_true")
    bs = bsub.add_parser("streams", help="how many live streams this machine keeps up with")
    bs.add_argument("--resolution", choices=["1080p", "720p", "576i"], default="1080p")
    bs.add_argument("--seconds", type=float, default=15.0, help="measured time per live trial")
    bs.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    bs.add_argument("--cache", default=".cache/bench", help="where the bench clips are kept")
    bs.add_argument("--json", action="store_true")

    sv = sub.add_parser("serve", help="monitor the configured live streams; API at /docs")
    sv.add_argument("--config", metavar="FILE", help="service YAML (streams, store, alerts)")
    sv.add_argument("--host", help="listen address (default: from config, 127.0.0.1)")
    sv.add_argument("--port", type=int, help="listen port (default: from config, 8470)")
    sv.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the store")

    dm = sub.add_parser("demo", help="synthetic live streams with scheduled defects, and serve")
    dm.add_argument("--port", type=int, default=8470, help="API port (default 8470)")
    dm.add_argument("--dir", default=".cache/demo", help="clips and the SQLite file go here")
    dm.add_argument("--duration", type=_seconds, metavar="S", help="stop after S seconds")
    return parser


def _seconds(text: str) -> float:
    """A length of time for argparse: a check of nothing must not pass as clean."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        handler = {
            "check": _check,
            "detectors": _detectors,
            "synth": _synth,
            "bench": _bench,
            "corpus": _corpus,
            "eval": _eval,
            "serve": _serve,
            "demo": _demo,
        }
        return handler[args.command](args)
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


def _keys(text: str | None) -> list[str] | None:
    if text is None:
        return None  # all of them
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:  # a check by no detector must not pass as clean
        raise ConfigError(f"--detectors {text!r}: name at least one (e.g. black,freeze)")
    return keys


def _writable(path: str) -> Path:
    """Where the report goes, refused before the check rather than after it."""
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"-o {path}: is a directory")
    if not out.parent.is_dir():
        raise ConfigError(f"-o {path}: no directory {out.parent}")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"-o {path}: not writable")
    return out


def _check(args: argparse.Namespace) -> int:
    from avwatch.analysis.check import check
    from avwatch.analysis.report import build_report, print_report, print_ts_report, worst_severity

    config = load_config(args.config)
    output = _writable(args.output) if args.output else None
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
        import time

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
            _keys(args.detectors),
            duration_s=args.duration,
            on_progress=on_progress,
            on_info=on_info,
            input_options=input_options,
        )
    report = build_report(result)
    text = json.dumps(report, indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
    if args.json:
        print(text)
    else:
        print_report(report, Console())
    if args.ts_report:
        print_ts_report(report, Console(stderr=args.json))
    worst = worst_severity(result)
    fail_on = Severity(args.fail_on)
    return EXIT_DEFECTS if worst is not None and worst.rank >= fail_on.rank else EXIT_OK


def _detectors(args: argparse.Namespace) -> int:
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
    return EXIT_OK


def _bounds(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{sign}{value}")
    return f"  [{' '.join(parts)}]" if parts else ""


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size {text!r}: expected WxH, e.g. 640x360")
    return int(parts[0]), int(parts[1])


def _rate(text: str) -> Fraction:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(
            f"frame rate {text!r}: expected a number such as 25 or 30000/1001"
        ) from None


def _synth(args: argparse.Namespace) -> int:
    from avwatch.lab.synth import ClipSpec, make_clip, offset_truth, parse_defect

    if (args.sound == "recorded") != (args.sound_file is not None):
        raise ConfigError("--sound recorded and --sound-file go together")
    try:
        width, height = _size(args.size)
        spec = ClipSpec(
            duration_s=args.duration,
            width=width,
            height=height,
            fps=_rate(args.fps),
            video_codec=args.video_codec or None,
            audio_codec=args.audio_codec or None,
            picture=args.picture,
            sound=args.sound,
            sound_file=args.sound_file,
            noise_levels=args.noise,
            interlaced=args.interlaced,
            defects=[parse_defect(d) for d in args.defect],
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    truth = make_clip(args.output, spec)  # a clip it cannot make is refused before writing
    if args.truth:
        record = {"events": truth, "av_offsets": offset_truth(spec)}
        Path(args.truth).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output} ({args.duration:g} s, {len(spec.defects)} defects)")
    return EXIT_OK


def _corpus(args: argparse.Namespace) -> int:
    from avwatch.lab.corpus import build

    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: not a directory")
    written = build(directory, quick=args.quick)
    print(f"wrote {len(written)} files with their truth to {args.directory}")
    return EXIT_OK


def _eval(args: argparse.Namespace) -> int:
    from avwatch.lab.evaluate import evaluate_dir

    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"avwatch: error: {directory}: not a directory", file=sys.stderr)
        return EXIT_UNUSABLE
    result = evaluate_dir(
        directory, load_config(args.config), _keys(args.detectors), tolerance_s=args.tolerance
    )
    report = result.as_dict()
    peer = None
    if args.peer:
        peer = evaluate_dir(directory, tolerance_s=args.tolerance, peer=args.peer).as_dict()
    if args.json:
        print(
            json.dumps(report if peer is None else {**report, "peer": {args.peer: peer}}, indent=2)
        )
    else:
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
            )
        console.print(table)
        if "av_offset" in report:
            _print_offsets(console, report["av_offset"])
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
    if args.floors and _below_floors(report, json.loads(Path(args.floors).read_text())):
        return EXIT_DEFECTS
    return EXIT_OK


def _below_floors(report: dict[str, Any], floors: dict[str, Any]) -> bool:
    """Say every type whose F1 is under its floor (``f1``) and every kind of content
    whose median A/V offset error is over its ceiling (``av_offset_error_median_ms``)."""
    failed = False
    for type_, floor in floors.get("f1", {}).items():
        f1 = report["types"].get(type_, {}).get("f1")
        if f1 is None or f1 < floor:
            print(f"avwatch: {type_}: F1 {f1} below the floor {floor}", file=sys.stderr)
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


def _print_offsets(console: Console, offsets: dict[str, Any]) -> None:
    table = Table(title="A/V offset estimates against the true offset")
    columns = ("content", "files", "estimates", "known share", "median ms", "p90 ms", "max ms")
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


def _bench(args: argparse.Namespace) -> int:
    if args.bench == "streams":
        return _bench_streams(args)
    from avwatch.lab.bench.throughput import throughput

    result = throughput(
        args.source, load_config(args.config), _keys(args.detectors), repeat=max(1, args.repeat)
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return EXIT_OK
    console = Console(soft_wrap=True)  # one line each, at any width
    console.print(f"[bold]{result.source}[/bold]: {result.frames} video frames")
    console.print(f"  decode only            {result.decode_fps_cpu:8.1f} frames per CPU-second")
    console.print(f"  + analysis samples     {result.analysis_fps_cpu:8.1f} frames per CPU-second")
    console.print(f"  full pipeline          {result.pipeline_fps_cpu:8.1f} frames per CPU-second")
    console.print(f"  pipeline / decode      {result.ratio:8.1%}   (best run of each stage)")
    console.print(
        f"{'':25}{result.paired_ratio:8.1%}   (median of {len(result.round_ratios)} rounds, each"
        " running both back to back)"
    )
    if result.cpu_split_us:
        console.print("  CPU a picture, best run  main thread  decoder's threads")
        for stage, (main, other) in result.cpu_split_us.items():
            name = stage.replace("_", " ")
            console.print(f"    {name:<22}{main:8.0f} µs  {other:11.0f} µs")
    for key, share in result.detector_share.items():
        console.print(f"    {key:<20} {share:7.2%} of pipeline CPU")
    if result.ts:
        console.print(
            f"  TR 101 290 analyser   {result.ts['ts_packets_per_cpu_s']:8.0f} packets per "
            f"CPU-second: a 20 Mb/s stream takes {result.ts['ts_core_share_at_20mbps']:.2%} "
            "of a core"
        )
    return EXIT_OK


def _bench_streams(args: argparse.Namespace) -> int:
    from avwatch.lab.bench.live_decode import DecodeTrial
    from avwatch.lab.bench.streams import StreamsResult, Trial, bench_streams

    console = Console(soft_wrap=True)  # one line per trial, at any width

    def show(found: StreamsResult | Trial | DecodeTrial) -> None:
        """Each finding as it comes: a run takes minutes."""
        if isinstance(found, StreamsResult):
            console.print(f"[bold]{found.resolution}[/bold] on {found.cores} cores")
            console.print(f"  decode only, by CPU   {found.decode_only_streams:6.1f} streams")
            console.print(f"  full pipeline, by CPU {found.pipeline_streams_by_cpu:6.1f} streams")
        elif isinstance(found, Trial):
            memory = "?" if found.rss_mb_per_stream is None else f"{found.rss_mb_per_stream:.0f}"
            console.print(
                f"  live: {found.streams:3d} streams  "
                f"{'kept up' if found.kept_up else 'fell behind'}"
                f"  max lag {found.max_lag_s:.2f} s  min fps {found.min_fps:.1f}"
                f"  dropped {found.dropped_samples}  {memory} MB per stream"
            )
        else:
            console.print(
                f"  live, decode only: {found.streams:3d} streams"
                f"  {'kept up' if found.kept_up else 'fell behind'}"
                f"  max lag {found.max_lag_s:.2f} s  min fps {found.min_fps:.1f}"
            )

    result = bench_streams(
        args.resolution,
        Path(args.cache),
        seconds=args.seconds,
        workers=args.workers,
        progress=None if args.json else show,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return EXIT_OK
    console.print(
        f"  kept up live: {result.live_streams} streams with every detector, "
        f"{result.decode_only_live_streams} decoding only = {result.ratio:.0%}"
        f" ({result.ratio_by_cpu:.0%} of decode-only by CPU)"
    )
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from avwatch.service.config import load_service_config
    from avwatch.service.core import Service
    from avwatch.service.server import serve_forever

    config = load_service_config(args.config)
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    serve_forever(Service(config, database=args.db), host, port)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    import secrets
    import socket
    import time

    from avwatch.lab.demo import CLIP_S, UdpSender, demo_config, make_demo_clips
    from avwatch.service.core import Service
    from avwatch.service.server import BackgroundServer

    directory = Path(args.dir)
    print(f"making the demo channels in {directory} ...", flush=True)
    clips = make_demo_clips(directory)
    ports = {}
    for name in clips:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            ports[name] = probe.getsockname()[1]
    senders = [UdpSender(path, ports[name], seconds=CLIP_S).start() for name, path in clips.items()]
    token = secrets.token_urlsafe(16)
    database = f"sqlite:///{(directory / 'demo.db').resolve()}"
    server = BackgroundServer(Service(demo_config(ports, database, token)), port=args.port)
    try:
        server.start()
        print(
            f"avwatch demo: {len(clips)} live UDP channels, defects every {CLIP_S:g} s\n"
            f"  API      {server.url}/docs\n"
            f"  streams  curl {server.url}/api/streams\n"
            f"  incidents curl '{server.url}/api/incidents?open=true'\n"
            f"  token    {token}   (for changes: -H 'Authorization: Bearer {token}')\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        # The service first: senders that stop before it would show up as input loss.
        if server.server.started:
            server.stop()
        for sender in senders:
            sender.stop()
    return EXIT_OK
