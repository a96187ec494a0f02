"""A damaged file is what a QC tool is for: `check` reports what could be read and
names the damage, never an internal error."""

from pathlib import Path
from typing import Any

import av
from helpers import run

from avwatch.decode.reader import MediaReader
from avwatch.types import DecodeIssue, VideoFrame

AUDIO_DETECTORS = {"audio_loss", "av_sync", "clipping", "loudness", "silence"}


def test_an_audio_stream_without_a_decoder_is_left_out_and_named(make, tmp_path: Path):
    path, _ = make("no_decoder", duration_s=2)
    data = bytearray(path.read_bytes())
    # The AAC sample entry, and the object type in its esds, made unknown: FFmpeg
    # then has no decoder and PyAV no codec context for the stream.
    esds = data.find(b"esds")
    object_type = data.find(b"\x40\x15", esds)  # AAC's object type, then the stream type
    assert esds > 0 and object_type > esds
    data[object_type] = 0xFE
    damaged = tmp_path / "no_decoder.mp4"
    damaged.write_bytes(bytes(data).replace(b"mp4a", b"zzzz"))
    with av.open(str(damaged)) as container:
        assert container.streams.audio[0].codec_context is None  # the case under test

    result = run(damaged)
    assert result.info.audio is None and result.video_frames == 50
    assert result.summary["decode"]["first_issues"][0] == {
        "time": 0.0,
        "kind": "no_decoder",
        "media": "audio",
        "message": "stream #1: no decoder",
    }


def test_audio_named_but_never_read_at_open_declines_the_audio_detectors(make, tmp_path: Path):
    # Pictures alone, then pictures and sound: the demuxer knows an audio stream at open
    # but has read none of it, so its sample rate and channels are 0.
    silent, _ = make("video_only", suffix=".ts", duration_s=8, audio_codec=None)
    both, _ = make("video_and_audio", suffix=".ts", duration_s=3)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(silent.read_bytes() + both.read_bytes())

    result = run(joined)
    assert result.info.audio is not None and result.info.audio.sample_rate == 0
    skipped = result.summary["skipped_detectors"]
    assert set(skipped) == AUDIO_DETECTORS
    assert all("sample rate or channels are unknown" in why for why in skipped.values())
    assert "black" not in skipped and result.video_frames > 200


class _StreamAppears:
    """A container whose first demux fails as PyAV's does when a stream appears after
    the open (IndexError inside its generator), after ``after`` packets."""

    def __init__(self, container: Any, after: int) -> None:
        self._container = container
        self._after = after
        self.demuxes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def demux(self, *streams: Any) -> Any:
        self.demuxes += 1
        packets = self._container.demux(*streams)
        if self.demuxes > 1:
            return packets
        return self._failing(packets)

    def _failing(self, packets: Any) -> Any:
        for n, packet in enumerate(packets):
            if n == self._after:
                raise IndexError("list index out of range")
            yield packet


def test_a_stream_appearing_mid_file_is_named_and_reading_goes_on(make):
    path, _ = make("appears", suffix=".ts", duration_s=4)
    with av.open(str(path)) as container:
        whole = [
            s for s in MediaReader(container, str(path)).samples() if isinstance(s, VideoFrame)
        ]
    with av.open(str(path)) as container:
        proxy = _StreamAppears(container, after=60)
        samples = list(MediaReader(proxy, str(path)).samples())  # type: ignore[arg-type]
    issues = [s.kind for s in samples if isinstance(s, DecodeIssue)]
    assert issues.count("stream_added") == 1 and "demux_error" not in issues
    assert proxy.demuxes == 2
    pictures = [s for s in samples if isinstance(s, VideoFrame)]
    # At most the packet the demuxer failed on is lost; the rest is read to the end.
    assert len(whole) - 1 <= len(pictures) <= len(whole)
    assert pictures[-1].time == whole[-1].time
