"""A clip looped seamlessly is one unbroken stream: only its own defects show."""

from __future__ import annotations

from helpers import of_type, run

from avwatch.lab.synth import Defect
from avwatch.lab.tsloop import SeamlessLoop
from avwatch.transport.analyser import TsAnalyzer


def test_three_laps_have_no_transport_errors_and_only_the_clips_defects(make, tmp_path):
    path, _ = make("tsloop", suffix=".ts", duration_s=4, defects=[Defect("black", 1.0, 2.0)])
    loop = SeamlessLoop(path.read_bytes(), 4.0)
    joined = tmp_path / "three.ts"
    joined.write_bytes(b"".join(loop.lap(k) for k in range(3)))
    analyzer = TsAnalyzer()
    analyzer.feed(joined.read_bytes())
    assert dict(analyzer.counts) == {}
    result = run(joined)
    spans = [(round(i.start, 3), round(i.end, 3)) for i in of_type(result, "black")]
    assert spans == [(1.0, 2.0), (5.0, 6.0), (9.0, 10.0)]
    assert {i.type for i in result.incidents} == {"black"}
    assert result.duration_s >= 11.9


def test_cues_move_on_with_each_lap_and_a_spoilt_one_stays_spoilt(make, tmp_path):
    path, _ = make(
        "tsloop_cues",
        suffix=".ts",
        duration_s=12,
        defects=[
            Defect("ad_break", 4.0, 6.0, {"overrun_s": 2.0}),
            Defect("ad_break", 8.0, 9.0, {"crc_error": 1}),
        ],
    )
    loop = SeamlessLoop(path.read_bytes(), 12.0)
    joined = tmp_path / "two.ts"
    joined.write_bytes(loop.lap(0) + loop.lap(1))
    result = run(joined)
    overruns = [(round(i.start, 2), round(i.end, 2)) for i in of_type(result, "ad_break_overrun")]
    assert overruns == [(6.0, 8.0), (18.0, 20.0)]  # not a stale splice time in lap 2
    assert len(of_type(result, "scte35_crc_error")) == 2
    assert not of_type(result, "scte35_late_cue")


def test_a_lap_is_paced_by_its_pcr_not_evenly_by_bytes(make):
    # Black from 1 to 3 s codes to next to nothing: sent evenly by bytes, the pictures
    # after it would go out seconds early (and a monitor re-anchors on them, then
    # counts the rest as lag). By the PCR, every byte goes out near its own time.
    path, _ = make(
        "tspace", suffix=".ts", duration_s=4, noise_levels=10.0, defects=[Defect("black", 1.0, 3.0)]
    )
    loop = SeamlessLoop(path.read_bytes(), 4.0)
    due = loop.send_times(7 * 188)
    assert due == sorted(due) and 0 <= due[0] < 0.2 and 3.8 < due[-1] <= 4.0
    data = loop.lap(0)
    pcrs = []  # (datagram, PCR seconds) of every PCR in the lap
    for pos in range(0, len(data), 188):
        packet = data[pos : pos + 188]
        if packet[3] & 0x20 and packet[4] and packet[5] & 0x10:
            base = int.from_bytes(packet[6:10], "big") << 1 | packet[10] >> 7
            pcrs.append((pos // (7 * 188), base / 90_000))
    first = pcrs[0][1]
    for k, t in pcrs:  # a PCR goes out with its datagram, between that one's and the next's
        assert due[k] - 1e-9 <= t - first <= (due[k + 1] if k + 1 < len(due) else 4.0) + 1e-9
    # Evenly by bytes, the first datagram after the black would go out 0.8 s early.
    after_black = next(k for k, t in pcrs if t - first >= 3.0)
    evenly = 4.0 * after_black / len(due)
    assert due[after_black] - evenly > 0.5
