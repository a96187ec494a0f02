"""``avwatch bench``: throughput of one file, and live streams per machine."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from avwatch.cli.common import EXIT_OK, Commands, keys
from avwatch.config import EngineConfig, load_model
from avwatch.errors import ConfigError


def register(sub: Commands) -> None:
    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    t = bsub.add_parser("throughput", help="decode-only vs full-pipeline frames per CPU-second")
    t.add_argument("source")
    t.add_argument("--config", metavar="FILE")
    t.add_argument("--detectors", metavar="LIST")
    t.add_argument("--repeat", type=int, default=3, help="runs per stage; the best counts")
    t.add_argument("--json", action="store_true")
    t.set_defaults(run=run_throughput)
    bs = bsub.add_parser("streams", help="how many live streams this machine keeps up with")
    bs.add_argument("--resolution", choices=["1080p", "720p", "576i"], default="1080p")
    bs.add_argument("--seconds", type=float, default=15.0, help="measured time per live trial")
    bs.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    bs.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="live trials in worker processes, or in actors of a one-node Ray cluster",
    )
    bs.add_argument("--cache", default=".cache/bench", help="where the bench clips are kept")
    bs.add_argument(
        "--analysis",
        type=_tiers,
        default=["full"],
        metavar="TIERS",
        help="comma-separated analysis tiers to measure, each in turn (full, fast, patrol)",
    )
    bs.add_argument(
        "--preset",
        default="veryfast",
        help="x264 preset of the bench clip (veryfast: as broadcast encoders write; "
        "ultrafast: no CABAC, deblocking or B-frames)",
    )
    bs.add_argument("--plan", type=int, metavar="N", help="cores for N streams of this kind...")
    bs.add_argument(
        "--mix",
        type=_mix,
        metavar="TIER=SHARE,...",
        help="...at this tier mix, e.g. patrol=0.9,full=0.1 (default: all at the first tier)",
    )
    bs.add_argument(
        "--full-slots",
        type=int,
        default=EngineConfig().escalation.full_slots,
        help="full slots per worker the patrolled streams' plan reserves",
    )
    bs.add_argument("--json", action="store_true")
    bs.set_defaults(run=run_streams)
    sk = bsub.add_parser(
        "soak", help="the service for hours with defects, input cuts and worker kills"
    )
    sk.add_argument("--hours", type=float, required=True)
    sk.add_argument("--streams", type=int, help="default: 80%% of what the cores can take")
    sk.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    sk.add_argument("--cut-every", type=float, default=300.0, metavar="S", help="an input cut")
    sk.add_argument("--cut-for", type=float, default=8.0, metavar="S", help="a cut's length")
    sk.add_argument("--kill-every", type=float, default=600.0, metavar="S", help="a worker kill")
    sk.add_argument("--sample-every", type=float, default=30.0, metavar="S")
    sk.add_argument("--cache", default=".cache/soak", help="where the soak clips are kept")
    sk.add_argument("--json", metavar="FILE", help="also write the full result here")
    sk.add_argument(
        "--trace-memory",
        action="store_true",
        help="say where the service process's Python allocations grew after the warm-up "
        "(tracemalloc; slows the service a little)",
    )
    sk.set_defaults(run=run_soak)
    rp = bsub.add_parser(
        "report", help="check --html on a long file: its cost, size and time to open"
    )
    rp.add_argument("--hours", type=float, default=2.0)
    rp.add_argument("--cache", default=".cache/bench", help="where the long file is kept")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(run=run_report)
    ar = bsub.add_parser(
        "architecture",
        help="in-memory hand-off against the object-store design (converter, Ray's "
        "object store, detector actors, orchestrator): CPU, bytes moved, streams per core",
    )
    ar.add_argument("--resolution", choices=["1080p", "720p", "576i"], default="1080p")
    ar.add_argument("--seconds", type=float, default=20.0, help="media analysed each way")
    ar.add_argument("--detectors", metavar="LIST", help="default: every detector")
    ar.add_argument(
        "--batch", type=int, default=1, help="pictures per step of the object-store design"
    )
    ar.add_argument("--cache", default=".cache/bench", help="where the bench clips are kept")
    ar.add_argument("--json", action="store_true")
    ar.set_defaults(run=run_architecture)
    fo = bsub.add_parser(
        "failover",
        help="a local Ray cluster loses a node (it dies or freezes): seconds until its "
        "streams deliver again from the other",
    )
    fo.add_argument("--loss", choices=["dies", "freezes"], action="append", help="default both")
    fo.add_argument("--hung-after", type=float, default=5.0, metavar="S", dest="hung_after_s")
    fo.add_argument("--json", action="store_true")
    fo.set_defaults(run=run_failover)


def run_throughput(args: argparse.Namespace) -> int:
    from avwatch.lab.bench.throughput import throughput

    result = throughput(
        args.source,
        load_model(EngineConfig, args.config),
        keys(args.detectors),
        repeat=max(1, args.repeat),
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


TIERS = ("full", "fast", "patrol")


def _tiers(text: str) -> list[str]:
    tiers = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in tiers if t not in TIERS]
    if bad or not tiers:
        raise argparse.ArgumentTypeError(f"tiers are {', '.join(TIERS)}, comma-separated")
    return tiers


def _mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        tier, _, share = part.partition("=")
        try:
            mix[tier.strip()] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: expected TIER=SHARE") from None
    if set(mix) - set(TIERS) or abs(sum(mix.values()) - 1) > 1e-6 or min(mix.values()) < 0:
        raise argparse.ArgumentTypeError(f"tiers are {', '.join(TIERS)}; shares add up to 1")
    return mix


def run_streams(args: argparse.Namespace) -> int:
    from avwatch.lab.bench.live_decode import DecodeTrial
    from avwatch.lab.bench.streams import StreamsResult, Trial, bench_streams, plan_cores
    from avwatch.service.monitor import STATUS_EVERY_S

    console = Console(soft_wrap=True)  # one line per trial, at any width

    def show(found: StreamsResult | Trial | DecodeTrial) -> None:
        """Each finding as it comes: a run takes minutes."""
        if isinstance(found, StreamsResult):
            console.print(
                f"[bold]{found.resolution} {found.analysis}[/bold] on {found.cores} cores "
                f"(clip: x264 {found.preset}; monitors: {found.backend})"
            )
            console.print(f"  decode only, by CPU   {found.decode_only_streams:6.1f} streams")
            console.print(f"  full pipeline, by CPU {found.pipeline_streams_by_cpu:6.1f} streams")
            console.print(
                f"  tile's colour picture {found.thumbnail_ms:6.2f} ms each, every "
                f"{STATUS_EVERY_S:g} s: {found.thumbnail_share:.2%} of a stream's CPU"
            )
        elif isinstance(found, Trial):
            memory = "?" if found.rss_mb_per_stream is None else f"{found.rss_mb_per_stream:.0f}"
            console.print(
                f"  live: {found.streams:3d} streams  "
                f"{'kept up' if found.kept_up else 'fell behind'}"
                f"  max lag {found.max_lag_s:.2f} s  min fps {found.min_fps:.1f}"
                f"  dropped {found.dropped_samples}  {memory} MB per stream"
                f"  {found.head_bytes_per_stream_s / 1000:.1f} kB/s per stream to the head"
            )
            if found.ray is not None:
                console.print(
                    f"        Ray's own {found.ray.processes} processes: "
                    f"{found.ray.cpu_share:.1%} of a core, {found.ray.rss_mb:.0f} MB"
                )
        else:
            console.print(
                f"  live, decode only: {found.streams:3d} streams"
                f"  {'kept up' if found.kept_up else 'fell behind'}"
                f"  max lag {found.max_lag_s:.2f} s  min fps {found.min_fps:.1f}"
            )

    mix = args.mix or {args.analysis[0]: 1.0}
    if args.plan is not None and set(mix) - set(args.analysis):
        raise ConfigError("--mix names tiers that --analysis does not measure")
    results = []
    for tier in args.analysis:
        result = bench_streams(
            args.resolution,
            Path(args.cache),
            seconds=args.seconds,
            workers=args.workers,
            progress=None if args.json else show,
            analysis=tier,
            preset=args.preset,
            backend=args.backend,
        )
        results.append(result)
        if not args.json:
            if tier == "full" and result.decode_only_live_streams:
                console.print(
                    f"  kept up live: {result.live_streams} streams with every detector, "
                    f"{result.decode_only_live_streams} decoding only = {result.ratio:.0%}"
                    f" ({result.ratio_by_cpu:.0%} of decode-only by CPU)"
                )
            else:  # no decode-only floor (another tier, or monitors on Ray)
                console.print(f"  kept up live: {result.live_streams} streams at {tier}")
    per_core = {r.analysis: r.live_streams / r.cores for r in results}
    if not args.json and len(results) > 1 and per_core.get("full"):
        console.print(
            "  per core: "
            + ", ".join(
                f"{t} {n:.1f} ({n / per_core['full']:.1f}x full)" for t, n in per_core.items()
            )
        )
    plan = None
    if args.plan is not None:
        plan = plan_cores(args.plan, mix, per_core, args.full_slots)
        if not args.json:
            console.print(
                f"[bold]plan[/bold]: {args.plan} {args.resolution} streams at "
                + ", ".join(f"{t} {s:.0%}" for t, s in mix.items())
                + f": {plan['cores']} cores ({plan['cores_exact']}, with {args.full_slots} "
                "full slots per core for the patrolled streams)"
            )
    if args.json:
        out: dict[str, Any] = {"results": [r.as_dict() for r in results]}
        if plan is not None:
            out["plan"] = plan
        print(json.dumps(out, indent=2))
    return EXIT_OK


def run_soak(args: argparse.Namespace) -> int:
    from avwatch.lab.bench.soak import SoakPlan, soak

    console = Console(soft_wrap=True)
    plan = SoakPlan(
        args.hours,
        streams=args.streams,
        cut_every_s=args.cut_every,
        cut_s=args.cut_for,
        kill_every_s=args.kill_every,
        sample_every_s=args.sample_every,
        workers=args.workers,
        trace_memory=args.trace_memory,
    )

    def tell(line: str) -> None:
        console.print(line)
        sys.stdout.flush()  # a soak takes hours: its log must be current in a file too

    # SIGTERM (kill, a CI job's timeout) stops a soak as Ctrl-C does: with its report.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = soak(plan, Path(args.cache), progress=tell)
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=1), encoding="utf-8")
    busy, busiest = result.busy_mean_max
    early = " (stopped early)" if result.stopped_early else ""
    console.print(
        f"[bold]soak[/bold]: {result.streams} streams on {result.workers} workers, "
        f"{result.hours:g} h{early}; the machine {busy:.0%} busy (at most {busiest:.0%})"
    )
    for type_, expected in sorted(result.expected.items()):
        console.print(f"  {type_:<12} found {result.found.get(type_, 0):5d} of {expected:5d}")
    unexpected = ", ".join(f"{t} {n}" for t, n in sorted(result.unexpected.items())) or "none"
    console.print(f"  unexpected incidents: {unexpected}")
    counted = result.cuts - result.cuts_left_out
    left_out = f" ({result.cuts_left_out} left out: their worker was killed during them)"
    console.print(
        f"  input cuts reported   {result.cuts_reported} of {counted}"
        + (left_out if result.cuts_left_out else "")
    )
    checks = ", ".join(f"{k} {n}" for k, n in sorted(result.programme_checks.items()))
    console.print(f"  programme checks at session ends: {checks or 'none'}")
    recovery = ", ".join(f"{r:g}" for r in result.recovery_s) or "-"
    console.print(
        f"  worker kills {result.kills}, restarts {result.worker_restarts}, "
        f"streams back after (s): {recovery}"
    )
    console.print(f"  alerts delivered      {result.alerts_delivered} of {result.alerts_written}")
    console.print(
        f"  resident memory slope: service {result.service_rss_slope_mb_h:+.2f} MB/h, "
        f"each worker {result.worker_rss_slope_mb_h:+.2f} MB/h, "
        f"{result.rss_slope_mb_per_stream_hour:+.3f} MB per stream-hour"
    )
    first, last = result.fds_first_last
    console.print(f"  open files, first sample fitted and last: {first} -> {last}")
    if result.memory_growth:
        console.print("  Python allocations grown in the service process after the warm-up:")
        for where, mb, count in result.memory_growth:
            console.print(f"    {mb:+8.3f} MB {count:+8d} blocks  {where}", highlight=False)
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    from avwatch.lab.bench.html_report import report_bench

    if args.hours <= 0:
        raise ConfigError("--hours must be positive")
    result = report_bench(args.hours, Path(args.cache))
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return EXIT_OK
    console = Console(soft_wrap=True)
    console.print(
        f"[bold]check --html[/bold] on {result.media_s / 3600:.2f} h of media "
        f"({result.incidents} incidents)"
    )
    console.print(
        f"  check CPU {result.check_cpu_s:.1f} s, with the recording "
        f"{result.check_with_recording_cpu_s:.1f} s ({result.recording_overhead:+.1%})"
    )
    console.print(f"  report {result.html_bytes / 1e6:.2f} MB: {result.report}")
    opened = "no Chromium here" if result.render_s is None else f"{result.render_s:.2f} s"
    console.print(f"  opened in Chromium (load and layout): {opened}")
    return EXIT_OK


def run_architecture(args: argparse.Namespace) -> int:
    import os

    from avwatch.lab.bench.architecture import bench_architecture
    from avwatch.lab.bench.streams import bench_clip

    if not 0 < args.seconds <= 30 or args.batch < 1:
        raise ConfigError("--seconds: more than 0 and at most 30 (the clip); --batch: 1 or more")
    clip = bench_clip(args.resolution, Path(args.cache))
    result = bench_architecture(
        clip,
        seconds=args.seconds,
        detectors=keys(args.detectors),
        batch=args.batch,
        cpus=os.cpu_count() or 1,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return EXIT_OK
    console = Console(soft_wrap=True)
    console.print(
        f"[bold]{args.resolution}[/bold], {len(result.detectors)} detectors, "
        f"{result.in_memory.media_s:.1f} s of media; object-store step: {result.step}"
    )
    for design in (result.in_memory, result.object_store):
        console.print(
            f"  {design.name:12s} {design.cpu_s_per_stream_hour:8.0f} CPU-s per stream-hour"
            f"  {design.bytes_per_stream_s / 1e6:7.2f} MB moved per stream-second"
            f"  {design.streams_per_core:6.2f} streams per core"
        )
    console.print(
        f"  the object-store design costs {result.cost_ratio:.1f}x the CPU "
        f"(in memory saves {1 - 1 / result.cost_ratio:.0%}); "
        f"same incidents: {'yes' if result.same_incidents else 'NO'}"
    )
    return EXIT_OK


def run_failover(args: argparse.Namespace) -> int:
    from avwatch.lab.bench.failover import bench_failover

    results = [
        bench_failover(loss, hung_after_s=args.hung_after_s)
        for loss in args.loss or ["dies", "freezes"]
    ]
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return EXIT_OK
    console = Console(soft_wrap=True)
    for r in results:
        checks = r.health_checks
        console.print(
            f"node {r.loss}: its {r.streams_lost} streams delivering again after "
            f"{r.recovery_s:.1f} s (health checks every {checks['health_check_period_ms']} ms, "
            f"{checks['health_check_failure_threshold']} missed = dead; actor silent "
            f"{r.hung_after_s:g} s = replaced)"
        )
        console.print(
            f"  Ray's own processes: head {r.head_ray_rss_mb:.0f} MB, "
            f"a node {r.node_ray_rss_mb:.0f} MB (resident, actors not counted)"
        )
    return EXIT_OK
