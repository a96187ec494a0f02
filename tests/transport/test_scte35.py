"""SCTE-35 sections read into what a monitor judges: published examples, the lab's
own encoder, and sections that must be refused."""

from __future__ import annotations

import base64

import pytest

from avwatch.lab.synth.scte35 import splice_insert
from avwatch.transport.scte35 import PTS_WRAP_S, Scte35Error, read_cue

# Examples published with threefive (SCTE-35 splice_insert, and a time_signal with a
# provider placement opportunity start).
SPLICE_INSERT = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo="
TIME_SIGNAL = "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg=="


def _spoilt(section: bytes) -> bytes:
    return section[:-1] + bytes([section[-1] ^ 0xFF])


def test_a_published_splice_insert_is_a_cue_out_with_its_break():
    cue = read_cue(base64.b64decode(SPLICE_INSERT))
    assert cue["command"] == "splice_insert" and cue["out"] is True
    assert cue["event_id"] == 1207959695
    assert cue["splice_clock"] == pytest.approx(21514.559089)
    assert cue["duration_s"] == pytest.approx(60.293567) and cue["auto_return"] is True


def test_a_time_signal_with_a_placement_opportunity_start_opens_a_break():
    cue = read_cue(base64.b64decode(TIME_SIGNAL))
    assert cue["command"] == "time_signal" and cue["out"] is True
    assert cue["event_id"] == 0x4800008E and cue["duration_s"] == pytest.approx(307.0)
    assert cue["segmentation"] == "Provider Placement Opportunity Start"


def test_the_lab_encoder_and_the_reader_agree_and_pts_adjustment_applies():
    section = splice_insert(
        9, out=False, pts_s=PTS_WRAP_S - 1.0, duration_s=None, pts_adjustment_s=3.0
    )
    cue = read_cue(section)
    assert cue["out"] is False and cue["event_id"] == 9 and cue["duration_s"] is None
    assert cue["splice_clock"] == pytest.approx(2.0)  # across the 33-bit wrap


@pytest.mark.parametrize(
    ("section", "says"),
    [
        (_spoilt(splice_insert(1, out=True, pts_s=10.0)), "CRC"),
        (b"\x00" * 20, "not a splice_info_section"),
        (b"\xfc\x30", "not a splice_info_section"),
    ],
)
def test_a_bad_section_is_refused_with_the_reason(section: bytes, says: str):
    with pytest.raises(Scte35Error, match=says):
        read_cue(section)
