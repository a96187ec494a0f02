"""corruption: pictures damaged in transport, against truth measured by decoding the
damaged file beside the clean one (avwatch.lab.damage)."""

from __future__ import annotations

import pytest
from helpers import of_type, run

from avwatch.lab.damage import Damage, damage_ts, picture_truth, transport_truth


@pytest.fixture(scope="module")
def damaged(make, tmp_path_factory):
    clean, _ = make("transport_clean", suffix=".ts", duration_s=12, noise_levels=2)
    path = tmp_path_factory.mktemp("damaged") / "damaged.ts"
    damages = [
        Damage("drop", 3.0, 20),  # lost packets: frames missing, then smeared to the keyframe
        Damage("corrupt", 6.5, 10),  # bit errors inside pictures
        Damage("cc_jump", 9.0),  # a counter jump that loses nothing
    ]
    transport = damage_ts(clean, path, damages)
    return path, transport, picture_truth(clean, path, 1.0) + transport_truth(path, 0.5)


def test_truth_is_measured_on_the_pictures(damaged):
    _, transport, measured = damaged
    assert [(e["type"], e["start"]) for e in transport] == [
        ("ts_cc_error", 3.0),
        ("ts_cc_error", 9.0),
    ]
    corruption = [e for e in measured if e["type"] == "corruption"]
    # Damage lasts to the next keyframe (every 2 s); the lossless jump damages nothing.
    assert [(e["start"], e["end"]) for e in corruption] == [(3.0, 4.0), (6.52, 8.0)]
    assert any(e["type"] == "dropped_frames" and e["start"] == 3.0 for e in measured)


def test_corruption_found_from_the_decoders_signals(damaged):
    path, _, measured = damaged
    result = run(path)
    found = sorted(of_type(result, "corruption"), key=lambda i: i.start)
    truth = [e for e in measured if e["type"] == "corruption"]
    assert len(found) == len(truth), (found, truth)
    for incident, event in zip(found, truth, strict=True):
        assert abs(incident.start - event["start"]) <= 0.1, (incident, event)
        assert incident.end == pytest.approx(event["end"], abs=0.05)
    issues = result.summary["decode"]["issues"]
    assert issues.get("corrupt_packet", 0) >= 1  # the demuxer saw the loss inside a packet
    assert len(of_type(result, "ts_cc_error")) == 2


def test_corruption_names_the_transport_findings_behind_it(damaged):
    path, transport, _ = damaged
    loss, bit_errors = sorted(of_type(run(path), "corruption"), key=lambda i: i.start)
    video_pid = transport[0]["details"]["pid"]
    cause = loss.details["transport"]["ts_cc_error"]
    assert cause["count"] == 1 and cause["pids"] == [video_pid]
    assert len(cause["packets"]) == 1 and cause["packets"][0] > 0
    # Bit errors inside the payload leave no transport finding: no cause to name.
    assert "transport" not in bit_errors.details


def test_plain_compression_blockiness_is_not_corruption(make):
    path, _ = make("starved", suffix=".ts", duration_s=8, noise_levels=2, bitrate=60_000)
    result = run(path)
    assert of_type(result, "corruption") == []
    assert result.summary["decode"]["issues"] == {}


def test_corruption_estimates_the_damaged_area(damaged):
    """The share of the picture the repairing keyframe changed, against the share of
    16x16 blocks measured damaged in the last damaged picture (decoded beside the clean)."""
    path, _, measured = damaged
    found = sorted(of_type(run(path), "corruption"), key=lambda i: i.start)
    truth = [e for e in measured if e["type"] == "corruption"]
    for incident, event in zip(found, truth, strict=True):
        estimate, actual = incident.details["damaged_area"], event["details"]["damaged_area_last"]
        assert abs(estimate - actual) <= 0.1, (estimate, actual)


def test_bit_errors_that_still_parse_are_found_by_strict_decoding(make, tmp_path_factory):
    """Noise in two packets at 11 s decodes as valid syntax: FFmpeg's own checks let
    the damage through unreported (the corpus's one miss before 'aggressive'). Strict
    checks reject the slice for leaving data unread, and the damage is found."""
    clean, _ = make("bit_errors_clean", suffix=".ts", duration_s=14, noise_levels=2)
    path = tmp_path_factory.mktemp("bit_errors") / "damaged.ts"
    damage_ts(clean, path, [Damage("corrupt", 5.0, 10), Damage("corrupt", 11.0, 2)])
    measured = picture_truth(clean, path, 1.0)
    truth = [(e["start"], e["end"]) for e in measured if e["type"] == "corruption"]
    assert truth == [(5.0, 6.0), (11.0, 12.0)]
    found = {}
    for mode in ("default", "aggressive"):
        incidents = of_type(run(path, decoder_error_detection=mode), "corruption")
        found[mode] = [(round(i.start, 2), round(i.end, 2)) for i in incidents]
    assert found["aggressive"] == truth
    assert set(found["default"]) <= set(truth)  # FFmpeg 8 (libavcodec 62): only the first


def test_packet_loss_in_hevc_thinner_than_its_sound_is_found(make, tmp_path_factory):
    # HEVC of a grainy 320x180 picture codes to about 40 kb/s, under its AAC sound: the
    # damage must still go into the video PID (it went into the audio's before).
    clean, _ = make(
        "transport_hevc", suffix=".ts", duration_s=8, video_codec="libx265", noise_levels=2
    )
    path = tmp_path_factory.mktemp("damaged") / "hevc_loss.ts"
    (loss,) = damage_ts(clean, path, [Damage("drop", 3.0, 7)])
    assert loss["type"] == "ts_cc_error" and loss["start"] == pytest.approx(3.0, abs=0.05)
    (found,) = of_type(run(path), "corruption")
    assert found.start == pytest.approx(3.0, abs=0.2) and found.end == pytest.approx(4.0, abs=0.1)
    # With B-frames the damaged pictures are not contiguous (docs/media.md trap 5): the
    # truth joins them as the incident tracker does, into the one event found.
    (damage,) = [e for e in picture_truth(clean, path, 1.0) if e["type"] == "corruption"]
    assert damage["start"] == pytest.approx(found.start, abs=0.1)
    assert damage["end"] == pytest.approx(found.end, abs=0.1)
