"""The ``avwatch check`` report: the JSON object of docs/architecture.md, and a text view."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from avwatch import __version__
from avwatch.pipeline import CheckResult
from avwatch.types import Severity

__all__ = ["build_report", "print_report", "worst_severity"]


def build_report(result: CheckResult) -> dict[str, Any]:
    info = result.info
    media: dict[str, Any] = {
        "duration_s": round(result.duration_s, 4),
        "container": info.container,
        "video": None,
        "audio": None,
    }
    if info.video:
        v = info.video
        media["video"] = {
            "codec": v.codec,
            "width": v.width,
            "height": v.height,
            "fps": None if v.fps is None else round(v.fps, 3),
            "pix_fmt": v.pix_fmt,
            "frames": result.video_frames,
        }
    if info.audio:
        a = info.audio
        media["audio"] = {
            "codec": a.codec,
            "sample_rate": a.sample_rate,
            "channels": a.channels,
            "layout": a.layout,
        }
    return {
        "source": info.source,
        "avwatch_version": __version__,
        "media": media,
        "events": [i.to_report() for i in result.incidents],
        "metrics": result.metrics,
    }


def worst_severity(result: CheckResult) -> Severity | None:
    if not result.incidents:
        return None
    return max((i.severity for i in result.incidents), key=lambda s: s.rank)


def print_report(report: dict[str, Any], console: Console) -> None:
    media = report["media"]
    parts = [f"{media['duration_s']:.2f} s", media["container"]]
    if media["video"]:
        v = media["video"]
        parts.append(f"video {v['codec']} {v['width']}x{v['height']} @ {v['fps']} fps")
    if media["audio"]:
        a = media["audio"]
        parts.append(f"audio {a['codec']} {a['sample_rate']} Hz {a['layout']}")
    console.print(f"[bold]{report['source']}[/bold]: " + ", ".join(parts))
    events = report["events"]
    if not events:
        console.print("[green]no defects found[/green]")
    else:
        table = Table(show_header=True, header_style="bold")
        for column in ("type", "start", "end", "duration", "severity", "details"):
            table.add_column(
                column, justify="right" if column in ("start", "end", "duration") else "left"
            )
        for e in events:
            duration = "" if e["end"] is None else f"{e['end'] - e['start']:.3f}"
            details = ", ".join(f"{k}={v}" for k, v in e["details"].items())
            table.add_row(
                e["type"],
                f"{e['start']:.3f}",
                "" if e["end"] is None else f"{e['end']:.3f}",
                duration,
                e["severity"],
                details,
            )
        console.print(table)
    loud = report["metrics"].get("loudness")
    if loud:
        console.print(
            f"loudness: integrated {loud['integrated_lufs']} LUFS (target {loud['target_lufs']}), "
            f"range {loud['loudness_range_lu']} LU, true peak {loud['true_peak_dbtp']} dBTP"
        )
    issues = report["metrics"]["decode"]["issues"]
    if issues:
        console.print("decoder: " + ", ".join(f"{k} x{v}" for k, v in sorted(issues.items())))
