"""``avwatch check --html``: the report as one self-contained HTML file.

Pictures first, text second, as QC tools show it: a timeline of the whole file with
a filmstrip and every incident, then loudness, each channel's level, the A/V offset
and the detectors' other signals over time, the TR 101 290 and PID tables, and the
settings used. Graphs are SVG drawn here and pictures are inlined JPEG, so the file
needs no network and no script to open; its size does not grow with the file's
length (the series are bucketed to about a thousand points).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from avwatch import __version__
from avwatch.analysis.check import CheckResult
from avwatch.analysis.recording import Recording
from avwatch.detectors.base import available_detectors
from avwatch.transport.tr101290 import CHECKS
from avwatch.types import Incident

__all__ = ["render_html"]

WIDTH = 1000  # drawing units across a graph; the page scales it
LEFT = 96  # room for the value axis and the timeline's lane names
RIGHT = WIDTH - 24  # and for the last time label
LEVEL_FLOOR_DBFS = -90.0
SEVERITY_COLOUR = {
    "critical": "#d62728",
    "error": "#ff7f0e",
    "warning": "#e7ba52",
    "info": "#7f7f7f",
}
LINE_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
Row = tuple[float, float, float, float]  # time, min, max, mean


@dataclass(frozen=True)
class Line:
    label: str
    rows: Sequence[Row]
    colour: str
    band: bool = False  # shade each bucket's min..max under the mean
    value: int = 3  # which of the row's values is drawn: 1 min, 2 max, 3 mean


def render_html(report: dict[str, Any], result: CheckResult, recording: Recording) -> str:
    duration = max(float(report["media"]["duration_s"]), 1e-3)
    sections = [
        _summary(report, result),
        _timeline(result.incidents, recording, duration),
        _incident_table(result.incidents, recording),
        _loudness(report, recording, duration),
        _levels(recording, duration),
        _av_offset(recording, duration),
        _other_signals(recording, duration),
        _transport(report),
        _decoding(report),
        _settings(report, result),
    ]
    title = f"avwatch QC report: {report['source']}"
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{''.join(s for s in sections if s)}"
        f"<footer>avwatch {_e(__version__)}, "
        f"{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}</footer></body></html>\n"
    )


# -- sections ----------------------------------------------------------------------------
def _summary(report: dict[str, Any], result: CheckResult) -> str:
    media = report["media"]
    rows = [("Duration", _clock(media["duration_s"])), ("Container", media["container"])]
    if media["video"]:
        v = media["video"]
        rows.append(
            (
                "Video",
                f"{v['codec']} {v['width']}x{v['height']} @ {v['fps']} fps, {v['pix_fmt']}, "
                f"{v['frames']} pictures",
            )
        )
    if media["audio"]:
        a = media["audio"]
        rows.append(
            ("Audio", f"{a['codec']} {a['sample_rate']} Hz, {a['layout']} ({a['channels']})")
        )
    metrics = report["metrics"]
    rows.append(("Profile", str(metrics.get("profile", "live"))))
    rows.append(("Analysis", str(metrics.get("analysis", {}).get("tier", "full"))))
    counts: dict[str, int] = {}
    for event in report["events"]:
        counts[event["type"]] = counts.get(event["type"], 0) + 1
    verdict = (
        "no defects found"
        if not counts
        else ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    )
    worst = _worst(result.incidents)
    badge = f'<span class="badge {worst or "ok"}">{_e(worst or "pass")}</span>'
    return (
        f'<section id="summary"><h2>Summary {badge}</h2><p class="verdict">{_e(verdict)}</p>'
        + _table(("", ""), rows, first_is_header=True)
        + "</section>"
    )


def _timeline(incidents: list[Incident], recording: Recording, duration: float) -> str:
    types = sorted({i.type for i in incidents})
    strip_h = 0 if not recording.strip else 60
    lane_h, top = 22, 8
    height = top + strip_h + lane_h * max(1, len(types)) + 24
    parts = [_svg_open("timeline", height)]
    if recording.strip:
        # Each picture drawn from its time to the next one's, cropped to fit.
        times = [t for t, _ in recording.strip] + [duration]
        for (t, jpeg), t_next in zip(recording.strip, times[1:], strict=False):
            x, w = _x(t, duration), max(1.0, _x(t_next, duration) - _x(t, duration))
            parts.append(
                f'<image x="{x:.1f}" y="{top}" width="{w:.1f}" height="{strip_h - 4}" '
                f'preserveAspectRatio="xMidYMid slice" href="{_jpeg_uri(jpeg)}"/>'
            )
    for lane, kind in enumerate(types):
        y = top + strip_h + lane * lane_h
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 15}" class="label" text-anchor="end">{_e(kind)}</text>'
        )
        parts.append(f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y + 11}" y2="{y + 11}" class="lane"/>')
    for n, incident in enumerate(incidents):
        y = top + strip_h + types.index(incident.type) * lane_h
        x0 = _x(incident.start, duration)
        end = incident.end if incident.end is not None else duration
        w = max(3.0, _x(end, duration) - x0)
        colour = SEVERITY_COLOUR.get(incident.severity.value, "#7f7f7f")
        parts.append(
            f'<a href="#incident-{n + 1}"><rect class="incident" data-type="{_e(incident.type)}" '
            f'x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="16" fill="{colour}">'
            f"<title>{_e(_describe(incident))}</title></rect></a>"
        )
    parts.append(_time_axis(duration, height - 18))
    parts.append("</svg>")
    return f"<section><h2>Timeline</h2>{''.join(parts)}</section>"


def _incident_table(incidents: list[Incident], recording: Recording) -> str:
    if not incidents:
        return ""
    body = []
    for n, incident in enumerate(incidents, 1):
        picture = recording.picture_of(incident)
        image = (
            f'<img class="thumb" alt="at {picture[0]:.2f} s" src="{_jpeg_uri(picture[1])}">'
            if picture
            else ""
        )
        end = "" if incident.end is None else f"{incident.end:.3f}"
        duration = "" if incident.end is None else f"{incident.end - incident.start:.3f}"
        details = ", ".join(f"{k}={v}" for k, v in incident.details.items())
        severity = incident.severity.value
        body.append(
            f'<tr id="incident-{n}"><td>{n}</td><td>{image}</td><td>{_e(incident.type)}'
            f"{_e(f' ({incident.key})' if incident.key else '')}</td>"
            f"<td>{_clock(incident.start)}<br><small>{incident.start:.3f} s</small></td>"
            f"<td>{end}</td><td>{duration}</td>"
            f'<td><span class="badge {severity}">{severity}</span></td>'
            f'<td class="details">{_e(details)}</td></tr>'
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "picture", "type", "start", "end", "duration (s)", "severity", "details")
    )
    return (
        f'<section><h2>Incidents ({len(incidents)})</h2><table id="incidents">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></section>"
    )


def _loudness(report: dict[str, Any], recording: Recording, duration: float) -> str:
    summary = report["metrics"].get("loudness")
    momentary = recording.series.get("momentary_lufs")
    short_term = recording.series.get("short_term_lufs")
    if summary is None or momentary is None:
        return ""
    lines = [Line("momentary", momentary.rows(), "#9ecae1", band=True)]
    if short_term is not None:
        lines.append(Line("short-term", short_term.rows(), "#1f77b4"))
    marks = [("target", summary["target_lufs"], "#2ca02c")]
    if summary.get("integrated_lufs") is not None:
        marks.append(("integrated", summary["integrated_lufs"], "#d62728"))
    facts = (
        f"integrated {_num(summary.get('integrated_lufs'))} LUFS "
        f"(target {summary['target_lufs']}), "
        f"loudness range {_num(summary.get('loudness_range_lu'))} LU, "
        f"true peak {_num(summary.get('true_peak_dbtp'))} dBTP (the programme's highest)"
    )
    target = float(summary["target_lufs"])
    chart = _chart("loudness", lines, duration, target - 25, max(target + 10, -5.0), marks, "LUFS")
    return f"<section><h2>Loudness</h2><p>{_e(facts)}</p>{chart}</section>"


def _levels(recording: Recording, duration: float) -> str:
    if not recording.levels:
        return ""
    charts = []
    for n, (channel, (peak, rms)) in enumerate(recording.levels.items()):
        colour = LINE_COLOURS[n % len(LINE_COLOURS)]
        lines = [
            Line("peak", peak.rows(), "#c7c7c7", value=2),
            Line("RMS", rms.rows(), colour, band=True),
        ]
        charts.append(
            f"<h3>{_e(channel)}</h3>"
            + _chart(f"channel-{channel}", lines, duration, LEVEL_FLOOR_DBFS, 0.0, [], "dBFS", 110)
        )
    return (
        '<section id="levels"><h2>Audio levels per channel</h2>'
        "<p>Sample peak (grey: the highest in each stretch) and RMS (shaded: lowest to "
        "highest) per channel; digital silence sits at the floor.</p>"
        f"{''.join(charts)}</section>"
    )


def _av_offset(recording: Recording, duration: float) -> str:
    offset = recording.series.get("av_offset_ms")
    if offset is None:
        return (
            "<section><h2>A/V offset</h2><p>No estimate: lip sync was unknown throughout "
            "(the content gave no evidence strong and consistent enough to judge).</p></section>"
        )
    rows = offset.rows()
    low = min(-200.0, min(r[1] for r in rows) - 20)
    high = max(200.0, max(r[2] for r in rows) + 20)
    chart = _chart(
        "av-offset",
        [Line("offset", rows, "#9467bd", band=True)],
        duration,
        low,
        high,
        [("in sync", 0.0, "#2ca02c")],
        "ms",
    )
    return (
        "<section><h2>A/V offset</h2><p>Positive: the sound is late. Gaps: unknown.</p>"
        f"{chart}</section>"
    )


def _other_signals(recording: Recording, duration: float) -> str:
    """Every other plot the detectors declare (black ratio, motion…), as the dashboard."""
    drawn = {"momentary_lufs", "short_term_lufs", "av_offset_ms"}
    charts = []
    for detector in available_detectors().values():
        for plot in detector.plots:
            names = [s for s in plot.signals if s in recording.series and s not in drawn]
            if not names:
                continue
            lines = [
                Line(
                    name,
                    recording.series[name].rows(),
                    LINE_COLOURS[i % len(LINE_COLOURS)],
                    band=True,
                )
                for i, name in enumerate(names)
            ]
            values = [v for line in lines for r in line.rows for v in (r[1], r[2])]
            low = plot.min if plot.min is not None else min(values)
            high = plot.max if plot.max is not None else max(values)
            charts.append(
                f"<h3>{_e(plot.title)}</h3>"
                + _chart(
                    names[0], lines, duration, low, high if high > low else low + 1, [], "", 110
                )
            )
    return f"<section><h2>Other signals</h2>{''.join(charts)}</section>" if charts else ""


def _transport(report: dict[str, Any]) -> str:
    ts = report["metrics"].get("ts")
    if ts is None:
        return ""
    checks = [(number, name, str(ts["errors"].get(key, 0))) for number, name, key in CHECKS]
    pids = []
    for pid, s in ts["pids"].items():
        rate = "" if s["bitrate_bps"] is None else f"{s['bitrate_bps'] / 1e6:.3f}"
        kind = "" if s["stream_type"] is None else f"{s['stream_type']:#04x}"
        pids.append((pid, kind, str(s["packets"]), rate, str(s["cc_errors"]), str(s["tei"])))
    return (
        f'<section id="transport"><h2>Transport: ETSI TR 101 290 ({ts["packets"]} packets)</h2>'
        + _table(("", "check", "errors"), checks, error_column=2)
        + "<h3>PIDs</h3>"
        + _table(
            ("PID", "stream type", "packets", "Mb/s", "CC errors", "TEI"), pids, error_column=4
        )
        + "</section>"
    )


def _decoding(report: dict[str, Any]) -> str:
    decode = report["metrics"]["decode"]
    if not decode["issues"]:
        return ""
    rows = [(kind, str(n)) for kind, n in sorted(decode["issues"].items())]
    first = [
        (f"{i['time']:.3f}", i["kind"], i["media"] or "", i["message"])
        for i in decode["first_issues"]
    ]
    return (
        "<section><h2>Decoding</h2>"
        + _table(("issue", "count"), rows)
        + "<h3>First issues</h3>"
        + _table(("time (s)", "kind", "media", "message"), first)
        + "</section>"
    )


def _settings(report: dict[str, Any], result: CheckResult) -> str:
    rows = [
        (key, ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items()))
        for key, options in sorted(result.settings.items())
    ]
    skipped = report["metrics"].get("skipped_detectors", {})
    rows += [(key, f"not run: {why}") for key, why in sorted(skipped.items())]
    return (
        '<section id="settings"><h2>Settings</h2>'
        + _table(("detector", "options"), rows)
        + "</section>"
    )


# -- drawing -----------------------------------------------------------------------------
def _chart(
    name: str,
    lines: list[Line],
    duration: float,
    low: float,
    high: float,
    marks: list[tuple[str, float, str]],
    unit: str,
    height: int = 170,
) -> str:
    plot_top, plot_bottom = 8, height - 24

    def y(value: float) -> float:
        clamped = min(max(value, low), high)
        return plot_bottom - (clamped - low) / (high - low) * (plot_bottom - plot_top)

    parts = [_svg_open(f"chart-{name}", height, kind="chart")]
    for value in _ticks(low, high, 4):
        parts.append(
            f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" class="label" text-anchor="end">'
            f"{_num(value)}</text>"
        )
    for line in lines:
        if not line.rows:
            continue
        if line.band:
            upper = " ".join(f"{_x(t, duration):.1f},{y(hi):.1f}" for t, _, hi, _ in line.rows)
            lower = " ".join(
                f"{_x(t, duration):.1f},{y(lo):.1f}" for t, lo, _, _ in reversed(line.rows)
            )
            parts.append(f'<polygon points="{upper} {lower}" fill="{line.colour}" opacity="0.3"/>')
        for segment in _segments(line.rows):
            points = " ".join(f"{_x(r[0], duration):.1f},{y(r[line.value]):.1f}" for r in segment)
            parts.append(
                f'<polyline class="series" data-series="{_e(line.label)}" points="{points}" '
                f'fill="none" stroke="{line.colour}" stroke-width="1.2"/>'
            )
    for n, (label, value, colour) in enumerate(marks):
        parts.append(
            f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="{colour}" stroke-dasharray="6 4"/>'
            f'<text x="{RIGHT - 4 - 130 * n}" y="{y(value) - 3:.1f}" class="label" '
            f'text-anchor="end" fill="{colour}">{_e(label)} {_num(value)}</text>'
        )
    legend = "  ".join(f"■ {line.label}" for line in lines) + (f" ({unit})" if unit else "")
    parts.append(f'<text x="{LEFT + 4}" y="{plot_top + 10}" class="label">{_e(legend)}</text>')
    parts.append(_time_axis(duration, height - 18))
    parts.append("</svg>")
    return "".join(parts)


def _segments(rows: Sequence[Row]) -> list[Sequence[Row]]:
    """Rows split where the signal paused for over three of its usual steps (e.g. lip
    sync unknown)."""
    steps = sorted(b[0] - a[0] for a, b in itertools.pairwise(rows))
    if not steps:
        return [rows]
    gap = 3 * steps[len(steps) // 2]
    out, start = [], 0
    for i in range(1, len(rows)):
        if rows[i][0] - rows[i - 1][0] > gap:
            out.append(rows[start:i])
            start = i
    out.append(rows[start:])
    return out


def _svg_open(name: str, height: int, kind: str = "timeline") -> str:
    return (
        f'<svg class="{kind}" id="{_e(name)}" viewBox="0 0 {WIDTH} {height}" '
        f'preserveAspectRatio="none" role="img" aria-label="{_e(name)}">'
    )


def _time_axis(duration: float, y: float) -> str:
    parts = [f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y}" y2="{y}" class="axis"/>']
    for t in _ticks(0.0, duration, 8):
        x = _x(t, duration)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y}" y2="{y + 4}" class="axis"/>'
            f'<text x="{x:.1f}" y="{y + 15}" class="label" text-anchor="middle">{_clock(t)}</text>'
        )
    return "".join(parts)


def _x(t: float, duration: float) -> float:
    return LEFT + max(0.0, min(t / duration, 1.0)) * (RIGHT - LEFT)


def _ticks(low: float, high: float, count: int) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if step * factor >= raw:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


# -- text --------------------------------------------------------------------------------
def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    first_is_header: bool = False,
    error_column: int | None = None,
) -> str:
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            tag = "th" if first_is_header and i == 0 else "td"
            bad = error_column == i and cell not in ("0", "")
            cells.append(f"<{tag}{' class=bad' if bad else ''}>{_e(cell)}</{tag}>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    thead = (
        ""
        if first_is_header
        else f"<thead><tr>{''.join(f'<th>{_e(h)}</th>' for h in head)}</tr></thead>"
    )
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


def _describe(incident: Incident) -> str:
    end = (
        "open"
        if incident.end is None
        else f"{_clock(incident.end)} ({incident.end - incident.start:.2f} s)"
    )
    details = ", ".join(f"{k}={v}" for k, v in incident.details.items())
    return (
        f"{incident.type} {incident.severity.value}: {_clock(incident.start)} to {end}. {details}"
    )


def _worst(incidents: list[Incident]) -> str | None:
    if not incidents:
        return None
    return max((i.severity for i in incidents), key=lambda s: s.rank).value


def _clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:04.1f}" if h else f"{int(m)}:{s:04.1f}"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value != int(value) else str(int(value))


def _jpeg_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#222}
h1{font-size:20px;word-break:break-all}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:12px 0 2px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.bad{color:#d62728;font-weight:bold}
td.details{font-size:12px;color:#555;max-width:420px;word-break:break-word}
svg{width:100%;height:auto;display:block;background:#fafafa;border:1px solid #eee}
svg .label{font-size:11px;fill:#444}
svg .grid,svg .lane{stroke:#e4e4e4}
svg .axis{stroke:#999}
img.thumb{width:160px;display:block}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.badge.ok{background:#2ca02c}
.badge.critical{background:#d62728}
.badge.error{background:#ff7f0e}
.badge.warning{background:#e7ba52}
.badge.info{background:#7f7f7f}
.verdict{font-size:15px}
footer{margin-top:32px;color:#888;font-size:12px}
"""
