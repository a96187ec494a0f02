"""``avwatch bench report``: what ``check --html`` costs on a long file, and what it makes.

A ten-minute clip with defects is made once and played ``hours`` over in one MPEG-TS
(its packets re-timed lap after lap, as a long recording would run). The file is
checked twice, without and with the recording the HTML report draws; the bench says
the CPU each took, the report's size, and, when Playwright and Chromium are there,
how long Chromium takes to load and lay it out.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from avwatch.analysis.check import check
from avwatch.analysis.html_report import render_html
from avwatch.analysis.recording import Recording
from avwatch.analysis.report import build_report
from avwatch.config import EngineConfig
from avwatch.lab.scratch import partial_path
from avwatch.lab.synth import ClipSpec, Defect, make_clip

__all__ = ["ReportBench", "report_bench"]

LAP_S = 600.0
LAP_DEFECTS = [
    Defect("black", 60.0, 63.0),
    Defect("freeze", 200.0, 204.0),
    Defect("silence", 330.0, 334.0),
    Defect("loudness", 420.0, 450.0, {"gain_db": 10.0}),
]


@dataclass
class ReportBench:
    hours: float
    media_s: float
    incidents: int
    check_cpu_s: float
    check_with_recording_cpu_s: float
    html_bytes: int
    render_s: float | None
    """Chromium: from navigation to the load event and a full layout; None without it."""
    report: str

    @property
    def recording_overhead(self) -> float:
        return self.check_with_recording_cpu_s / self.check_cpu_s - 1

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recording_overhead": round(self.recording_overhead, 4)}


def report_bench(hours: float, cache: Path) -> ReportBench:
    cache.mkdir(parents=True, exist_ok=True)
    laps = max(1, round(hours * 3600 / LAP_S))
    long_file = cache / f"report-{laps}x{LAP_S:.0f}s.ts"
    if not long_file.exists():
        lap = cache / "report-lap.ts"
        if not lap.exists():
            make_clip(
                lap,
                ClipSpec(
                    duration_s=LAP_S,
                    width=320,
                    height=180,
                    picture="moving",
                    sound="music",
                    defects=LAP_DEFECTS,
                ),
            )
        _repeat(lap, long_file, laps)
    config = EngineConfig()
    plain = check(str(long_file), config)
    recording = Recording()
    recorded = check(str(long_file), config, recording=recording)
    out = cache / "report.html"
    out.write_text(render_html(build_report(recorded), recorded, recording), encoding="utf-8")
    return ReportBench(
        hours=hours,
        media_s=round(recorded.duration_s, 1),
        incidents=len(recorded.incidents),
        check_cpu_s=round(plain.cpu_s, 2),
        check_with_recording_cpu_s=round(recorded.cpu_s, 2),
        html_bytes=out.stat().st_size,
        render_s=_render_s(out),
        report=str(out),
    )


def _repeat(lap: Path, out: Path, laps: int) -> None:
    """``laps`` copies of ``lap`` in one TS, each lap's timestamps after the last's."""
    partial = partial_path(out)
    with av.open(str(lap)) as source:
        # A lap lasts from its first decoding time to its last packet's end, in seconds.
        first: dict[int, float] = {}
        end = 0.0
        for packet in source.demux():
            if packet.dts is None or packet.time_base is None:
                continue
            base = float(packet.time_base)
            first.setdefault(packet.stream.index, packet.dts * base)
            end = max(end, (packet.dts + (packet.duration or 0)) * base)
        lap_s = end - min(first.values())
        with av.open(str(partial), "w", format="mpegts") as sink:
            streams = {s.index: sink.add_stream_from_template(s) for s in source.streams}
            for n in range(laps):
                source.seek(0)
                for packet in source.demux():
                    if packet.dts is None or packet.time_base is None:
                        continue  # the demuxer's flush packets
                    shift = round(n * lap_s / float(packet.time_base))
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts += shift
                    packet.stream = streams[packet.stream.index]
                    sink.mux(packet)
    partial.rename(out)


def _render_s(html: Path) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = shutil.which("chromium")
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        began = time.perf_counter()
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        page.evaluate("document.body.getBoundingClientRect().height")  # forces the layout
        took = time.perf_counter() - began
        browser.close()
    return round(took, 3)
