"""``avwatch check --html``: one self-contained file with the timeline, a colour picture
of each incident, loudness, each channel's level and the tables; opened in Chromium."""

from __future__ import annotations

import base64
import math
import re
import time
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import ARTIFACTS, colour_clip

from avwatch.analysis.meters import FLOOR_DBFS, AudioMeter
from avwatch.analysis.series import WholeSeries
from avwatch.cli import main
from avwatch.types import AudioBlock


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    clip = folder / "colour.ts"
    colour_clip(clip)
    html = folder / "report.html"
    assert main(["check", str(clip), "--profile", "qc", "--html", str(html)]) == 1  # defects
    return html


def _rgb(jpeg: bytes) -> np.ndarray:
    decoder = av.CodecContext.create("mjpeg", "r")
    (frame,) = decoder.decode(av.Packet(jpeg))
    return frame.to_ndarray(format="rgb24")


def test_whole_series_stays_bounded_and_keeps_a_spike():
    series = WholeSeries(points=100)
    for i in range(72_000):  # two hours at ten values a second
        series.add(i / 10, 5.0 if i != 40_000 else 90.0)
    rows = series.rows()
    assert 50 <= len(rows) <= 100
    assert max(r[2] for r in rows) == 90.0  # the one spike is a bucket's maximum
    assert all(r[1] == 5.0 for r in rows)
    assert rows[-1][0] == pytest.approx(7200, abs=series.width)


def test_audio_meter_reads_each_channel_peak_and_rms():
    meter = AudioMeter(("FL", "FR"))
    t = np.arange(4800) / 48_000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    meter.add(AudioBlock(0.0, np.stack([tone, np.zeros_like(tone)]).astype(np.float32), 48_000))
    levels = meter.read()
    assert levels is not None and levels.channels == ("FL", "FR")
    assert levels.peak_dbfs[0] == pytest.approx(20 * math.log10(0.5), abs=0.05)
    assert levels.rms_dbfs[0] == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.05)
    assert levels.peak_dbfs[1] == levels.rms_dbfs[1] == FLOOR_DBFS
    assert meter.read() is None  # read resets it


def test_the_html_report_is_self_contained_with_a_colour_picture_per_incident(report: Path):
    text = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing fetched
    assert "<script" not in text and "<link" not in text
    lanes = set(re.findall(r'class="incident" data-type="([a-z_]+)"', text))
    assert {"black", "silence"} <= lanes
    rows = re.findall(r'<tr id="incident-\d+">(.*?)</tr>', text)
    pictures = {}
    for row in rows:
        kind = re.search(r"</td><td>([a-z_]+)", row).group(1)
        jpeg = re.search(r'src="data:image/jpeg;base64,([^"]+)"', row)
        assert jpeg, f"no picture for {kind}"
        pictures[kind] = _rgb(base64.b64decode(jpeg.group(1))).reshape(-1, 3).mean(axis=0)
    # The right channel falls silent at 1.0 s, over red pictures; black is black.
    red, green, blue = pictures["silence"]
    assert red > green + 80 and red > blue + 80
    assert pictures["black"].max() < 40
    for section in ('id="levels"', "chart-channel-FL", "chart-channel-FR", "chart-loudness"):
        assert section in text
    assert "TR 101 290" in text and "Sync_byte_error" in text
    assert 'id="settings"' in text and "min_duration_s" in text


def test_the_html_report_opens_in_chromium_with_its_timeline_and_graphs(browser, report: Path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    began = time.perf_counter()
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    print(f"report rendered in {time.perf_counter() - began:.3f} s")
    timeline = page.locator("svg#timeline")
    assert timeline.is_visible() and timeline.bounding_box()["width"] > 800
    assert page.locator("svg#timeline rect.incident").count() >= 2
    # Every picture decoded: the filmstrip's and each incident's.
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth === 192)")
    # The level graphs have lines across the file: many points each.
    points = page.evaluate(
        "[...document.querySelectorAll('svg[id^=chart-channel] polyline.series')]"
        ".map(l => l.points.numberOfItems)"
    )
    assert len(points) == 4 and sum(points) > 100
    page.screenshot(path=ARTIFACTS / "check-report.png", full_page=True)
    page.close()
