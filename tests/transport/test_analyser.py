"""TR 101 290 checks on the bytes of a clean TS, damaged inside the test: exact counts."""

import numpy as np
import pytest

from avwatch.transport.analyser import NEWS, TS_PACKET, TsAnalyzer, TsEvent, crc32_mpeg


def findings(analyzer: TsAnalyzer) -> list[TsEvent]:
    """The analyser's findings, without what it reads for detectors (PMT, SDT, cues)."""
    return [e for e in analyzer.events if e.type not in NEWS]


@pytest.fixture(scope="module")
def clean_ts(tmp_path_factory) -> bytes:
    from avwatch.lab.synth import ClipSpec, make_clip

    path = tmp_path_factory.mktemp("ts") / "clean.ts"
    make_clip(path, ClipSpec(duration_s=6, width=320, height=180))
    return path.read_bytes()


def packets(data: bytes) -> np.ndarray:
    return np.frombuffer(bytearray(data), np.uint8).reshape(-1, TS_PACKET).copy()


def pids(p: np.ndarray) -> np.ndarray:
    return ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]


def analyse(data: bytes, chunk: int = 1316) -> TsAnalyzer:
    analyzer = TsAnalyzer()
    for i in range(0, len(data), chunk):
        analyzer.feed(data[i : i + chunk])
    analyzer.finish()
    return analyzer


def video_pid(p: np.ndarray) -> int:
    values, counts = np.unique(pids(p), return_counts=True)
    return int(values[np.argmax(counts)])


def test_crc32_mpeg_reference_value():
    assert crc32_mpeg(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value


def test_clean_stream_has_no_errors(clean_ts):
    analyzer = analyse(clean_ts)
    summary = analyzer.summary()
    assert summary["errors"] == {}
    assert summary["packets"] == len(clean_ts) // TS_PACKET
    assert {27, 15} <= {v["stream_type"] for v in summary["pids"].values()}  # H.264, AAC


@pytest.mark.parametrize("chunk", [188, 1316, 65536], ids=["packet", "udp", "file"])
def test_dropped_packets_are_continuity_errors(clean_ts, chunk):
    p = packets(clean_ts)
    vpid = video_pid(p)
    video = np.flatnonzero(pids(p) == vpid)
    drop = video[[100, 300, 301, 500]]  # 401 right after 400: one error, not two
    damaged = np.delete(p, drop, axis=0).tobytes()
    analyzer = analyse(damaged, chunk)
    assert analyzer.counts["ts_cc_error"] == 3
    assert analyzer.pids[vpid].cc_errors == 3
    assert all(e.pid == vpid for e in findings(analyzer))


@pytest.mark.parametrize("chunk", [188, 65536], ids=["packet", "file"])
def test_a_duplicate_packet_is_allowed_and_a_flagged_discontinuity_resets(clean_ts, chunk):
    p = packets(clean_ts)
    vpid = video_pid(p)
    video = np.flatnonzero(pids(p) == vpid)
    # Sent twice (TR 101 290 allows one duplicate): no error.
    twice = np.insert(p, video[200] + 1, p[video[200]], axis=0)
    assert analyse(twice.tobytes(), chunk).counts["ts_cc_error"] == 0
    # Counters jump by 5 from a packet with an adaptation field on: one error, none
    # when that packet's discontinuity_indicator says so.
    at = next(i for i in video[100:] if p[i, 3] & 0x20 and p[i, 4] > 0)
    later = video[video >= at]
    jumped = p.copy()
    jumped[later, 3] = (jumped[later, 3] & 0xF0) | ((jumped[later, 3] + 5) & 0x0F)
    assert analyse(jumped.tobytes(), chunk).counts["ts_cc_error"] == 1
    jumped[at, 5] |= 0x80
    flagged = analyse(jumped.tobytes(), chunk)
    assert flagged.counts["ts_cc_error"] == 0


def test_transport_error_indicator(clean_ts):
    p = packets(clean_ts)
    for i in (50, 60, 70, 80, 90):
        p[i, 1] |= 0x80
    assert analyse(p.tobytes()).counts["ts_tei"] == 5


def test_pat_crc_error(clean_ts):
    p = packets(clean_ts)
    pat = np.flatnonzero(pids(p) == 0)
    for i in pat[[3, 7]]:
        p[i, 10] ^= 0xFF  # a byte inside the section: the CRC no longer matches
    analyzer = analyse(p.tobytes())
    assert analyzer.counts["ts_crc_error"] == 2
    assert analyzer.counts["ts_pat_error"] == 0


def test_missing_pat_for_over_half_a_second(clean_ts):
    p = packets(clean_ts)
    pat = np.flatnonzero(pids(p) == 0)
    # Remove 10 PATs in a row; the clean stream's clock says how long the hole is.
    clean = TsAnalyzer()
    clean.feed(p[: pat[19] + 1].tobytes())
    before = clean.clock
    clean.feed(p[pat[19] + 1 : pat[30] + 1].tobytes())
    hole = clean.clock - before
    assert 1.05 < hole < 1.45  # one error at 0.5 s and one at 1.0 s into it
    damaged = np.delete(p, pat[20:30], axis=0).tobytes()
    analyzer = analyse(damaged, chunk=TS_PACKET)
    gaps = [e for e in analyzer.events if e.type == "ts_pat_error"]
    assert len(gaps) == 2, gaps
    assert all(e.details["reason"] == "PAT missing" for e in gaps)


def test_one_bad_sync_byte_is_not_sync_loss_but_two_are(clean_ts):
    p = packets(clean_ts)
    p[200, 0] = 0x00
    one = analyse(p.tobytes())
    assert one.counts["sync_byte_error"] == 1 and one.counts["ts_sync_loss"] == 0
    p[500, 0] = p[501, 0] = 0x00
    two = analyse(p.tobytes())
    assert two.counts["ts_sync_loss"] == 1


def pcr_seconds(p: np.ndarray) -> dict[int, float]:
    """Row -> PCR seconds, for the packets that carry one."""
    has_pcr = ((p[:, 3] & 0x20) != 0) & (p[:, 4] > 0) & ((p[:, 5] & 0x10) != 0)
    out = {}
    for row in np.flatnonzero(has_pcr).tolist():
        raw = int.from_bytes(p[row, 6:12].tobytes(), "big")
        out[row] = ((raw >> 15) * 300 + (raw & 0x1FF)) / 27e6
    return out


def test_findings_after_a_signal_cut_are_dated_when_the_stream_resumed(clean_ts):
    """Every packet for about a second is gone: the continuity errors the stream comes back
    with happened when it resumed, not at the last PCR before the cut."""
    p = packets(clean_ts)
    pcrs = pcr_seconds(p)
    rows = sorted(pcrs)
    first, resume = rows[len(rows) // 3] + 5, rows[len(rows) // 3 + 30] - 5
    assert pcrs[rows[len(rows) // 3 + 30]] - pcrs[rows[len(rows) // 3]] > 0.8
    analyzer = analyse(np.delete(p, np.arange(first, resume), axis=0).tobytes())
    cc = [e for e in analyzer.events if e.type == "ts_cc_error"]
    assert {e.pid for e in cc} >= {video_pid(p)}
    resumed_at = pcrs[rows[len(rows) // 3 + 30]]
    (video_error,) = [e for e in cc if e.pid == video_pid(p)]
    assert video_error.time == pytest.approx(resumed_at, abs=0.001)
    assert all(e.time >= resumed_at - 0.001 for e in cc)  # other PIDs: when they came back
    # An error between two PCRs of an unbroken stream keeps the PCR before it.
    video = np.flatnonzero(pids(p) == video_pid(p))
    lone, seen_at = video[400], video[401]  # the error shows on the next video packet
    analyzer = analyse(np.delete(p, [lone], axis=0).tobytes())
    before = max(t for row, t in pcrs.items() if row < seen_at)
    assert [e.time for e in findings(analyzer)] == [before]


def test_pcr_jump_is_a_pcr_discontinuity_error(clean_ts):
    p = packets(clean_ts)
    has_pcr = ((p[:, 3] & 0x20) != 0) & (p[:, 4] > 0) & ((p[:, 5] & 0x10) != 0)
    pcr_rows = np.flatnonzero(has_pcr)
    for i in pcr_rows[len(pcr_rows) // 2 :]:
        raw = int.from_bytes(p[i, 6:12].tobytes(), "big")
        base = (raw >> 15) + 90000  # one second later, from here on
        raw = (base << 15) | (raw & 0x7FFF)
        p[i, 6:12] = np.frombuffer(raw.to_bytes(6, "big"), np.uint8)
    analyzer = analyse(p.tobytes())
    jumps = [e for e in analyzer.events if e.type == "ts_pcr_error"]
    assert len(jumps) == 1 and jumps[0].details["check"] == "discontinuity"
    assert jumps[0].details["jump_s"] == pytest.approx(1.0, abs=0.05)


def test_pcr_step_back_is_a_discontinuity_not_a_huge_interval(clean_ts):
    p = packets(clean_ts)
    has_pcr = ((p[:, 3] & 0x20) != 0) & (p[:, 4] > 0) & ((p[:, 5] & 0x10) != 0)
    row = np.flatnonzero(has_pcr)[20]
    p[row, 6:12] = 0  # a PCR of zero: far in the past
    jumps = [e for e in analyse(p.tobytes()).events if e.type == "ts_pcr_error"]
    assert [e.details["check"] for e in jumps] == ["discontinuity", "discontinuity"]
    assert jumps[0].details["jump_s"] < 0 < jumps[1].details["jump_s"]


@pytest.fixture(scope="module")
def cbr_ts(tmp_path_factory, clean_ts) -> bytes:
    """The clean clip remuxed at a constant 2 Mb/s: each PCR is fixed by its byte position."""
    import av

    folder = tmp_path_factory.mktemp("cbr")
    (folder / "vbr.ts").write_bytes(clean_ts)
    options = {"muxrate": "2000000", "pcr_period": "20"}
    with (
        av.open(str(folder / "vbr.ts")) as source,
        av.open(str(folder / "cbr.ts"), "w", format="mpegts", options=options) as out,
    ):
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return (folder / "cbr.ts").read_bytes()


def shift_pcr(p: np.ndarray, row: int, ticks: int) -> None:
    """Move the PCR in packet ``row`` by ``ticks`` of the 27 MHz clock."""
    raw = int.from_bytes(p[row, 6:12].tobytes(), "big")
    pcr = (raw >> 15) * 300 + (raw & 0x1FF) + ticks
    raw = ((pcr // 300) << 15) | (raw & 0x7E00) | (pcr % 300)
    p[row, 6:12] = np.frombuffer(raw.to_bytes(6, "big"), np.uint8)


def pcr_rows(p: np.ndarray) -> np.ndarray:
    return np.flatnonzero(((p[:, 3] & 0x20) != 0) & (p[:, 4] > 0) & ((p[:, 5] & 0x10) != 0))


def test_pcr_accuracy_on_a_constant_bitrate_stream(cbr_ts):
    clean = analyse(cbr_ts, chunk=65536).summary()
    assert clean["errors"] == {}
    assert clean["pcr_accuracy"]["judged"] > 200 and clean["pcr_accuracy"]["worst_ns"] < 50
    p = packets(cbr_ts)
    rows = pcr_rows(p)
    shift_pcr(p, rows[60], 1000)  # 37 us off its byte position
    shift_pcr(p, rows[120], 10)  # 370 ns: within the 500 ns of TR 101 290
    events = findings(analyse(p.tobytes(), chunk=65536))
    errors = [e for e in events if e.type == "ts_pcr_accuracy"]
    assert len(errors) == 1 and len(events) == 1
    assert errors[0].packet == rows[60]
    assert errors[0].details["error_ns"] == pytest.approx(1000 / 27e6 * 1e9, abs=40)


def test_pcr_accuracy_is_not_judged_on_a_variable_bitrate_stream(clean_ts):
    summary = analyse(clean_ts, chunk=65536).summary()
    assert summary["pcr_accuracy"] == {"judged": 0, "worst_ns": None}


def test_tables_are_learned_and_checked_within_one_large_read(clean_ts):
    """At a low bitrate one read holds seconds of stream: the PMT named by a PAT in
    it must be followed from there, not from the next read."""
    p = packets(clean_ts)
    pmt_pid = 0x1000  # FFmpeg's muxer default
    pmt = np.flatnonzero(pids(p) == pmt_pid)
    damaged = np.delete(p, pmt[20:30], axis=0)  # ten PMTs in a row: a hole over 1 s
    analyzer = analyse(damaged.tobytes(), chunk=len(damaged) * TS_PACKET)
    assert {27, 15} <= {v["stream_type"] for v in analyzer.summary()["pids"].values()}
    gaps = [e for e in analyzer.events if e.type == "ts_pmt_error"]
    assert [e.details["gap_s"] for e in gaps] == [0.5, 1.0]  # each dated when it fell due
    assert gaps[1].time - gaps[0].time == pytest.approx(0.5)


def test_tap_hands_on_every_byte_and_analyses_each_once(clean_ts):
    """Reads as libavformat makes them: a probe, a seek back to the start, a peek at
    the end, then odd-sized reads in order. What comes back is the file; the analyser
    sees each packet once, in order."""
    import io

    from avwatch.input.tap import TsTap

    analyzer = TsAnalyzer()
    tap = TsTap(io.BytesIO(clean_ts), analyzer)
    probe = tap.read(5000)
    tap.seek(len(clean_ts) - 3000)
    tail = tap.read(3000)
    tap.seek(0)
    parts = []
    while part := tap.read(7001):
        parts.append(part)
    tap.close()
    assert probe == clean_ts[:5000] and tail == clean_ts[-3000:]
    assert b"".join(parts) == clean_ts
    assert analyzer.packet_index == len(clean_ts) // TS_PACKET
    assert analyzer.summary()["errors"] == {}
    buffer = bytearray(100)  # readinto, for readers that call it, still works
    tap2 = TsTap(io.BytesIO(clean_ts), TsAnalyzer())
    assert tap2.readinto(buffer) == 100 and bytes(buffer) == clean_ts[:100]
