"""Live inputs other than plain UDP, for real on loopback: RTP, HTTP TS, HLS, RTMP
(avwatch listening), SRT as caller and as listener (through the ffmpeg gateway, which
hands on the bytes as sent, so the TS analyser sees them).
Each sends a clip with one black second and checks a 3-4 s window of it."""

from __future__ import annotations

import functools
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import imageio_ffmpeg
import pytest
from helpers import free_port

from avwatch.analysis.check import CheckResult, check
from avwatch.config import EngineConfig
from avwatch.errors import AvwatchError
from avwatch.input.source import protocol_supported
from avwatch.lab.demo import DATAGRAM
from avwatch.lab.synth import Defect

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
CONFIG = EngineConfig(open_timeout_s=8, read_timeout_s=4)


@pytest.fixture(scope="module")
def clip(make) -> Path:
    path, _ = make("protocols", suffix=".ts", duration_s=4, defects=[Defect("black", 1.0, 2.0)])
    return path


def frames_and_black(result: CheckResult) -> tuple[int, list[float]]:
    blacks = [i.end - i.start for i in result.incidents if i.type == "black" and i.end]
    return result.video_frames, blacks


def assert_live(result: CheckResult, seconds: float) -> None:
    frames, blacks = frames_and_black(result)
    assert frames >= 25 * (seconds - 2)  # joining mid-GOP may cost up to 2 s
    for duration in blacks:  # any black seen is the one second that was sent
        assert duration == pytest.approx(1.0, abs=0.1)


@pytest.fixture
def sender() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait(5)
        if process.stdin is not None:
            process.stdin.close()


def ffmpeg_send(processes: list, clip: Path, *output: str) -> None:
    """ffmpeg plays the clip in a loop at real time into ``output``; stopped by the fixture."""
    processes.append(
        subprocess.Popen(
            [
                FFMPEG,
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-stream_loop",
                "-1",
                "-i",
                str(clip),
                "-c",
                "copy",
                *output,
            ],
            stdin=subprocess.DEVNULL,
        )
    )


def test_rtp_carrying_mpeg_ts(clip: Path):
    port = free_port(socket.SOCK_DGRAM)
    stop = threading.Event()

    def send() -> None:  # RFC 2250: 7 TS packets per RTP packet, payload type 33
        data = clip.read_bytes()
        chunks = [data[i : i + DATAGRAM] for i in range(0, len(data), DATAGRAM)]
        pause = 4.0 / len(chunks)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            seq, deadline = 0, time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < deadline:
                for chunk in chunks:
                    header = struct.pack("!BBHII", 0x80, 33, seq & 0xFFFF, seq * 1000, 0x1234)
                    sock.sendto(header + chunk, ("127.0.0.1", port))
                    seq += 1
                    time.sleep(pause)
                    if stop.is_set():
                        return

    thread = threading.Thread(target=send)
    thread.start()
    try:
        result = check(f"rtp://127.0.0.1:{port}", CONFIG, ["black"], duration_s=3.0)
    finally:
        stop.set()
        thread.join(5)
    assert result.info.container == "mpegts"  # read by avwatch's socket, RTP headers off
    assert_live(result, 3.0)
    ts = result.summary["ts"]  # the TR 101 290 analyser saw the packets
    assert ts["packets"] > 1000
    assert 27 in {pid["stream_type"] for pid in ts["pids"].values()}  # H.264, from the PMT


def test_a_datagram_with_nothing_to_pass_on_is_not_the_end_of_the_stream():
    """PyAV takes a read of nothing for the end: a stray non-RTP datagram must not be it."""
    from avwatch.input.udp import UdpTsReader

    port = free_port(socket.SOCK_DGRAM)
    reader = UdpTsReader(f"rtp://127.0.0.1:{port}", 2.0, 2.0, rtp=True)
    payload = bytes([0x47]) + bytes(187)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(bytes(20), ("127.0.0.1", port))  # version 0: not RTP
            rtp = struct.pack("!BBHII", 0x80, 33, 1, 0, 0x1234) + payload
            later = threading.Timer(0.3, sock.sendto, args=(rtp, ("127.0.0.1", port)))
            later.start()
            buffer = bytearray(4096)
            n = reader.readinto(buffer)
            later.join()
        assert bytes(buffer[:n]) == payload
    finally:
        reader.close()


def test_rtp_with_another_payload_is_refused_clearly(clip: Path):
    port = free_port(socket.SOCK_DGRAM)
    stop = threading.Event()

    def send() -> None:  # payload type 96: a dynamic type, not MPEG-TS
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for seq in range(200):
                if stop.is_set():
                    return
                header = struct.pack("!BBHII", 0x80, 96, seq, seq * 1000, 0x1234)
                sock.sendto(header + bytes(1316), ("127.0.0.1", port))
                time.sleep(0.02)

    thread = threading.Thread(target=send)
    thread.start()
    try:
        with pytest.raises(AvwatchError, match="payload type 96"):
            check(f"rtp://127.0.0.1:{port}", CONFIG, ["black"], duration_s=3.0)
    finally:
        stop.set()
        thread.join(5)


@pytest.fixture(scope="module")
def hls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http")


@pytest.fixture(scope="module")
def http_root(clip: Path, hls_dir: Path) -> Iterator[str]:
    root = hls_dir
    (root / "live.ts").write_bytes(clip.read_bytes())
    subprocess.run(
        [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(clip),
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "0",
            str(root / "index.m3u8"),
        ],
        check=True,
    )
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *_args: object) -> None:
        pass


def test_http_transport_stream(http_root: str, clip: Path):
    result = check(f"{http_root}/live.ts", CONFIG, ["black"])
    assert frames_and_black(result) == (100, [pytest.approx(1.0, abs=0.05)])
    # avwatch read the body itself: the TS analyser saw every packet of it.
    assert result.summary["ts"]["packets"] == clip.stat().st_size // 188
    assert result.summary["ts"]["errors"] == {}


def test_http_transport_stream_joined_mid_packet(http_root: str, hls_dir: Path, clip: Path):
    """A live HTTP response may start anywhere: the partial packet is skipped."""
    (hls_dir / "joined.ts").write_bytes(clip.read_bytes()[100:])
    result = check(f"{http_root}/joined.ts", CONFIG, ["black"])
    assert result.summary["ts"]["packets"] == clip.stat().st_size // 188 - 1
    assert "ts_sync_loss" not in result.summary["ts"]["errors"]


def test_http_body_that_is_not_ts_is_left_to_libavformat(http_root: str, hls_dir: Path, make):
    mp4, _ = make("protocols_mp4", suffix=".mp4", duration_s=2)
    (hls_dir / "clip.mp4").write_bytes(mp4.read_bytes())
    result = check(f"{http_root}/clip.mp4", CONFIG, ["black"])
    assert result.video_frames == 50
    assert "ts" not in result.summary


def hls_segments(root: Path) -> list[Path]:
    return sorted(root.glob("index*.ts"), key=lambda p: int(p.stem[len("index") :]))


def test_hls_playlist_segments_go_through_the_ts_analyser(http_root: str, hls_dir: Path):
    result = check(f"{http_root}/index.m3u8", CONFIG, ["black"])
    assert result.info.container == "mpegts"  # avwatch fetched the segments itself
    assert frames_and_black(result) == (100, [pytest.approx(1.0, abs=0.05)])
    segments = hls_segments(hls_dir)
    ts = result.summary["ts"]
    assert ts["packets"] == sum(p.stat().st_size for p in segments) // 188
    # FFmpeg's segmenter writes the PAT and PMT once per 2 s segment: each segment
    # overruns TR 101 290's 0.5 s three times, on both tables. Nothing else is wrong.
    assert [pat_count(p) for p in segments] == [1, 1]
    assert ts["errors"] == {"ts_pat_error": 6, "ts_pmt_error": 6}


def pat_count(path: Path) -> int:
    import numpy as np

    p = np.frombuffer(path.read_bytes(), np.uint8).reshape(-1, 188)
    return int(np.count_nonzero((((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]) == 0))


def test_hls_segment_damage_is_counted_exactly(http_root: str, hls_dir: Path):
    """Two video packets lost from the second segment: two continuity errors."""
    import numpy as np

    segments = hls_segments(hls_dir)
    p = np.frombuffer(segments[1].read_bytes(), np.uint8).reshape(-1, 188)
    pids = ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]
    values, counts = np.unique(pids, return_counts=True)
    video = int(values[np.argmax(counts)])
    (hls_dir / "damaged1.ts").write_bytes(
        np.delete(p, np.flatnonzero(pids == video)[[40, 120]], axis=0).tobytes()
    )
    playlist = (hls_dir / "index.m3u8").read_text().replace(segments[1].name, "damaged1.ts")
    (hls_dir / "damaged.m3u8").write_text(playlist)
    result = check(f"{http_root}/damaged.m3u8", CONFIG, ["black"])
    errors = [i for i in result.incidents if i.type == "ts_cc_error"]
    assert [i.key for i in errors] == [f"{video:#06x}"] * 2
    # In the second segment's bytes, which arrive (PCR) ~0.5 s before their pictures
    # are shown at 2 s: the muxer's delay.
    assert all(i.start > 1.0 for i in errors), [i.start for i in errors]


def test_live_hls_playlist_is_followed_as_it_grows(http_root: str, hls_dir: Path):
    """A live playlist (no ENDLIST) that lists one segment, then the next, then ends."""
    segments = hls_segments(hls_dir)
    header = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"

    def publish(count: int, ended: bool) -> None:
        body = "".join(f"#EXTINF:2.0,\n{s.name}\n" for s in segments[:count])
        tmp = hls_dir / "grow.tmp"
        tmp.write_text(header + body + ("#EXT-X-ENDLIST\n" if ended else ""))
        tmp.replace(hls_dir / "grow.m3u8")

    publish(1, ended=False)
    threading.Timer(1.5, publish, (2, False)).start()
    threading.Timer(3.0, publish, (2, True)).start()
    result = check(f"{http_root}/grow.m3u8", CONFIG, ["black"])
    assert result.info.container == "mpegts"
    assert frames_and_black(result) == (100, [pytest.approx(1.0, abs=0.05)])
    assert result.summary["ts"]["errors"] == {"ts_pat_error": 6, "ts_pmt_error": 6}


def test_fmp4_hls_is_left_to_libavformat(http_root: str, hls_dir: Path, clip: Path):
    subprocess.run(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(clip), "-c", "copy"),
            *("-bsf:a", "aac_adtstoasc", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0"),
            *("-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"),
            str(hls_dir / "fmp4.m3u8"),
        ],
        check=True,
    )
    result = check(f"{http_root}/fmp4.m3u8", CONFIG, ["black"])
    assert result.info.container == "hls"  # decoded by libavformat, not TS-analysed
    assert frames_and_black(result) == (100, [pytest.approx(1.0, abs=0.05)])
    assert "ts" not in result.summary


def test_rtmp_published_to_avwatch_listening(clip: Path, sender: list):
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/test"
    result_box: list[CheckResult] = []
    listener = threading.Thread(
        target=lambda: result_box.append(
            check(url, CONFIG, ["black"], duration_s=3.0, input_options={"listen": "1"})
        )
    )
    listener.start()
    time.sleep(0.5)  # avwatch listens first, as a receiving server does
    ffmpeg_send(sender, clip, "-f", "flv", url)
    listener.join(30)
    assert result_box, "the RTMP check did not finish"
    assert result_box[0].info.container == "flv"
    assert_live(result_box[0], 3.0)


@pytest.mark.parametrize("avwatch_mode", ["caller", "listener"])
def test_srt_through_the_gateway(clip: Path, sender: list, avwatch_mode: str):
    port = free_port(socket.SOCK_DGRAM)
    if avwatch_mode == "caller":
        ffmpeg_send(sender, clip, "-f", "mpegts", f"srt://127.0.0.1:{port}?mode=listener")
        time.sleep(0.5)
        url = f"srt://127.0.0.1:{port}"
    else:
        url = f"srt://127.0.0.1:{port}?mode=listener"
        threading.Timer(
            0.5, ffmpeg_send, (sender, clip, "-f", "mpegts", f"srt://127.0.0.1:{port}")
        ).start()
    result = check(url, CONFIG, ["black"], duration_s=3.0)
    assert_live(result, 3.0)
    if not protocol_supported("srt"):
        assert result.info.container == "mpegts"  # what the gateway hands on


def test_srt_bytes_reach_the_ts_analyser_as_they_were_sent(clip: Path, sender: list):
    """Three video packets lost before the sender: the gateway hands on the bytes
    unchanged, so TR 101 290 sees exactly those three continuity errors (a remux
    would have renumbered the counters and hidden them)."""
    import numpy as np

    p = np.frombuffer(clip.read_bytes(), np.uint8).reshape(-1, 188)
    pids = ((p[:, 1].astype(int) & 0x1F) << 8) | p[:, 2]
    values, counts = np.unique(pids, return_counts=True)
    video = int(values[np.argmax(counts)])
    lost = np.flatnonzero(pids == video)[[50, 150, 250]]
    data = np.delete(p, lost, axis=0).tobytes()
    port = free_port(socket.SOCK_DGRAM)
    process = subprocess.Popen(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "data", "-i", "pipe:0"),
            *("-map", "0", "-c", "copy", "-f", "data", "-flush_packets", "1"),
            f"srt://127.0.0.1:{port}?mode=listener",
        ],
        stdin=subprocess.PIPE,
    )
    sender.append(process)
    threading.Thread(target=paced_write, args=(process, data, 4.0), daemon=True).start()
    result = check(f"srt://127.0.0.1:{port}", CONFIG, ["black"], duration_s=3.5)
    errors = [i for i in result.incidents if i.type == "ts_cc_error"]
    assert [i.key for i in errors] == [f"{video:#06x}"] * 3
    assert result.summary["ts"]["packets"] > 500


def paced_write(process: subprocess.Popen[bytes], data: bytes, seconds: float) -> None:
    """Write ``data`` to the process's stdin evenly over ``seconds``, as a live source."""
    assert process.stdin is not None
    step = 7 * 188
    period = seconds * step / len(data)
    start = time.monotonic()
    try:
        for n, i in enumerate(range(0, len(data), step)):
            time.sleep(max(0.0, start + n * period - time.monotonic()))
            process.stdin.write(data[i : i + step])
            process.stdin.flush()
        time.sleep(1.0)  # let the receiver take the last of it before the sender goes
        process.stdin.close()
    except (BrokenPipeError, ValueError):
        pass  # the test is over and the fixture stopped the sender


def test_hls_master_playlist_follows_its_best_rendition(http_root: str, hls_dir: Path):
    (hls_dir / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=300000\nmissing.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2000000\nindex.m3u8\n"
    )
    result = check(f"{http_root}/master.m3u8", CONFIG, ["black"])
    assert frames_and_black(result) == (100, [pytest.approx(1.0, abs=0.05)])
    assert result.summary["ts"]["packets"] > 0


def test_missing_hls_playlist_is_a_clear_error(http_root: str):
    with pytest.raises(AvwatchError, match=r"nope\.m3u8: not found \(HTTP 404\)"):
        check(f"{http_root}/nope.m3u8", CONFIG, ["black"])


class _Trickle(BaseHTTPRequestHandler):
    """A TS response that starts well and then sends one byte every 0.3 s, for ever
    (until the client goes): every socket read succeeds, the stream never moves."""

    head = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        try:
            self.wfile.write(self.head)
            self.wfile.flush()
            deadline = time.monotonic() + 60  # stops by itself whatever happens
            while time.monotonic() < deadline:
                time.sleep(0.3)
                self.wfile.write(b"\x47")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize("head_packets", [2, 400], ids=["stalls-at-once", "stalls-mid-stream"])
def test_a_trickling_http_source_ends_in_time(clip: Path, head_packets: int):
    handler = type("Trickle", (_Trickle,), {"head": clip.read_bytes()[: 188 * head_packets]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/live.ts"
    started = time.monotonic()
    try:
        try:
            result = check(url, EngineConfig(open_timeout_s=2, read_timeout_s=2), duration_s=3)
        except AvwatchError as exc:
            assert "stalled" in str(exc) or "cannot be reached" in str(exc)
        else:  # what came before the stall is reported, and the stall named
            assert result.summary["decode"]["issues"].get("demux_error") == 1
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 15


class _TrickleSegment(_Trickle):
    """An HLS playlist served at once, whose one segment then trickles."""

    def do_GET(self) -> None:
        if self.path.endswith(".m3u8"):
            body = b"#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nseg.ts\n#EXT-X-ENDLIST\n"
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


def test_a_trickling_hls_segment_ends_in_time(clip: Path):
    handler = type("TrickleSegment", (_TrickleSegment,), {"head": clip.read_bytes()[: 188 * 2]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/live.m3u8"
    started = time.monotonic()
    try:
        with pytest.raises(AvwatchError):
            check(url, EngineConfig(open_timeout_s=2, read_timeout_s=2), duration_s=3)
    finally:
        server.shutdown()
        server.server_close()
    assert time.monotonic() - started < 15
