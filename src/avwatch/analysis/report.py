"""The ``avwatch check`` report: the JSON object of docs/architecture.md, and a text view."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from avwatch import __version__
from avwatch.analysis.check import CheckResult
from avwatch.detectors.base import available_detectors
from avwatch.transport.tr101290 import CHECKS
from avwatch.types import Severity

__all__ = ["build_report", "print_report", "print_ts_report", "worst_severity"]


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
        "metrics": result.summary,
    }


def worst_severity(result: CheckResult) -> Severity | None:
    if not result.incidents:
        return None
    return max((i.severity for i in result.incidents), key=lambda s: s.rank)


def print_ts_report(report: dict[str, Any], console: Console) -> None:
    ts = report["metrics"].get("ts")
    if ts is None:
        console.print("TR 101 290: not an MPEG-TS input read by avwatch (no table)")
        return
    table = Table(title=f"ETSI TR 101 290 — {ts['packets']} packets")
    for column in ("", "check", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for number, name, key in CHECKS:
        count = ts["errors"].get(key, 0)
        table.add_row(number, name, f"[red]{count}[/red]" if count else "0")
    console.print(table)
    pids = Table(title="PIDs")
    for column in ("PID", "stream type", "packets", "Mb/s", "CC errors", "TEI"):
        pids.add_column(column, justify="left" if column == "PID" else "right")
    for pid, s in ts["pids"].items():
        rate = "" if s["bitrate_bps"] is None else f"{s['bitrate_bps'] / 1e6:.3f}"
        stream_type = "" if s["stream_type"] is None else f"{s['stream_type']:#04x}"
        pids.add_row(pid, stream_type, str(s["packets"]), rate, str(s["cc_errors"]), str(s["tei"]))
    console.print(pids)


def _analysis_line(analysis: dict[str, Any]) -> str:
    if analysis["tier"] == "fast":
        return "analysis: fast (every picture, decoded without deblocking)"
    line = (
        f"analysis: patrol — {analysis['keyframes_alone']} keyframes decoded alone "
        "(black, freeze and video loss judged at the keyframe spacing; lip sync, dropped "
        f"frames and picture damage not judged there), {analysis['pictures_in_full']} "
        "pictures in full"
    )
    if "escalations" in analysis:
        line += (
            f" ({analysis['escalations']} escalations on trouble, "
            f"{analysis['rotations']} rotation slices)"
        )
    return line


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
    analysis = report["metrics"].get("analysis")
    if analysis is not None:
        console.print(_analysis_line(analysis), highlight=False, markup=False)
    if report["metrics"].get("profile") == "qc":
        console.print("profile: qc (file QC: short defects reported too)", highlight=False)
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
    detectors = available_detectors()
    for key, summary in report["metrics"].items():
        if key in detectors and summary:
            for line in detectors[key].report_lines(summary):
                console.print(line, highlight=False, markup=False)
    issues = report["metrics"]["decode"]["issues"]
    if issues:
        console.print("decoder: " + ", ".join(f"{k} x{v}" for k, v in sorted(issues.items())))
