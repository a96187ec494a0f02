"""``avwatch bench``: throughput of one file, and live streams per machine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from avwatch.cli.common import EXIT_OK, Commands, keys
from avwatch.config import EngineConfig, load_model


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
    bs.add_argument("--cache", default=".cache/bench", help="where the bench clips are kept")
    bs.add_argument("--json", action="store_true")
    bs.set_defaults(run=run_streams)


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


def run_streams(args: argparse.Namespace) -> int:
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
