import gc
from itertools import pairwise

import av
import numpy as np
import pytest
from helpers import of_type, run

from avwatch.decode.reader import MediaReader, analysis_size, frames_to_float32, pcm_to_float32
from avwatch.input.source import open_input
from avwatch.lab.synth import Defect
from avwatch.types import AudioBlock, DecodeIssue, VideoFrame


@pytest.mark.parametrize(
    ("fmt", "values", "expected"),
    [
        ("s16", np.array([[0, 16384, -32768, 32767]], np.int16), [0.0, 0.5, -1.0, 32767 / 32768]),
        ("s16p", np.array([[16384, -16384], [0, 0]], np.int16), [0.5, -0.5]),
        ("u8", np.array([[128, 255, 0, 192]], np.uint8), [0.0, 127 / 128, -1.0, 0.5]),
        ("flt", np.array([[0.25, -0.25, 1.5, 0.0]], np.float32), [0.25, -0.25, 1.5, 0.0]),
    ],
    ids=["s16-packed", "s16-planar", "u8", "float"],
)
def test_pcm_to_float32(fmt, values, expected):
    layout = "mono" if values.shape[0] == 1 and fmt in ("s16p",) else "stereo"
    if fmt == "s16p":
        frame = av.AudioFrame.from_ndarray(values, format=fmt, layout="stereo")
        assert pcm_to_float32(frame)[0].tolist() == expected
        return
    frame = av.AudioFrame.from_ndarray(values, format=fmt, layout=layout)
    out = pcm_to_float32(frame)
    assert out.dtype == np.float32 and out.shape == (2, 2)
    assert out.T.reshape(-1).tolist() == pytest.approx(expected)


@pytest.mark.parametrize("fmt", ["fltp", "s16", "flt"])
def test_frames_join_into_one_block_as_each_converts(fmt):
    """The planar-float path that copies planes into place gives what converting
    each frame and joining them gives, for frames of any length (AAC 1024, MP2 1152)."""
    rng = np.random.default_rng(3)
    frames = []
    for samples in (1024, 1152, 7):
        planar = rng.uniform(-1, 1, (2, samples)).astype(np.float32)
        if fmt == "s16":
            values = (planar.T.reshape(1, -1) * 32767).astype(np.int16)
        elif fmt == "flt":
            values = planar.T.reshape(1, -1)
        else:
            values = planar
        frames.append(av.AudioFrame.from_ndarray(values, format=fmt, layout="stereo"))
    block = frames_to_float32(frames)
    expected = np.concatenate([pcm_to_float32(f) for f in frames], axis=1)
    assert block.dtype == np.float32 and block.shape == (2, 1024 + 1152 + 7)
    assert np.array_equal(block, expected)


def test_time_zero_is_the_first_displayed_frame_in_mpegts(make):
    # The TS muxer starts PTS at 1.4 s and x264 adds B-frame delay: events still land at 2.0.
    path, _ = make("ts_black", suffix=".ts", duration_s=5, defects=[Defect("black", 2.0, 3.0)])
    (incident,) = of_type(run(path, ["black"]), "black")
    assert incident.start == pytest.approx(2.0, abs=0.001)


def test_samples_are_analysis_sized_and_ordered(make):
    path, _ = make("order", duration_s=3, width=640, height=360)
    container = open_input(str(path))
    reader = MediaReader(container, str(path), analysis_width=160)
    samples = list(reader.samples())
    video = [s for s in samples if isinstance(s, VideoFrame)]
    audio = [s for s in samples if isinstance(s, AudioBlock)]
    assert video[0].time == 0.0
    assert video[0].luma.shape == (90, 160) and video[0].luma.dtype == np.uint8
    assert all(b.time < a.time for b, a in pairwise(video))
    assert all(b.end <= a.time + 1e-6 for b, a in pairwise(audio))
    assert audio[0].samples.dtype == np.float32 and audio[0].samples.shape[0] == 2
    assert reader.info.video is not None and reader.info.video.width == 640


def test_corrupt_transport_stream_is_data_not_a_crash(make, tmp_path):
    path, _ = make("ts_clean", suffix=".ts", duration_s=6, noise_levels=3)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(7)
    # Scribble over the payload of some packets in the middle (keep sync bytes and headers).
    packets = len(data) // 188
    for index in rng.choice(np.arange(packets // 3, 2 * packets // 3), size=60, replace=False):
        start = index * 188 + 8
        data[start : start + 150] = rng.integers(0, 256, 150, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    result = run(damaged)
    assert sum(result.summary["decode"]["issues"].values()) > 0, result.summary["decode"]
    assert result.duration_s == pytest.approx(6.0, abs=0.2)
    # Each issue is placed on the timeline, in the damaged middle third.
    reader = MediaReader(open_input(str(damaged)), str(damaged))
    issues = [s for s in reader.samples() if isinstance(s, DecodeIssue)]
    assert issues and all(1.0 <= i.time <= 5.0 for i in issues), issues[:5]
    assert {i.kind for i in issues} <= {"decode_error", "concealment", "discontinuity"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ((1920, 1080), (320, 180)),
        ((1280, 720), (320, 180)),
        ((720, 576), (240, 192)),
        ((3840, 2160), (320, 180)),
        ((320, 180), (320, 180)),
        ((160, 90), (160, 90)),
    ],
    ids=["1080p", "720p", "576i", "2160p", "small", "smaller-than-analysis"],
)
def test_analysis_size_shrinks_by_a_whole_factor(source, expected):
    assert analysis_size(*source, 320) == expected


def test_damaged_packets_give_corruption_until_the_next_keyframe(make, tmp_path):
    path, _ = make("ts_clean", suffix=".ts", duration_s=6, noise_levels=3)
    data = bytearray(path.read_bytes())
    packets = len(data) // 188
    rng = np.random.default_rng(11)
    for index in rng.choice(np.arange(packets // 2, packets // 2 + 40), size=10, replace=False):
        start = int(index) * 188 + 8
        data[start : start + 150] = rng.integers(0, 256, 150, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged_middle.ts"
    damaged.write_bytes(bytes(data))
    found = of_type(run(damaged, ["corruption"]), "corruption")
    assert found, "damage in the middle of the file must be reported"
    # The synthetic stream has a keyframe every 2 s: damage ends at one.
    for incident in found:
        assert 1.5 <= incident.start <= 4.5
        assert incident.end is not None and round(incident.end / 2.0, 3).is_integer()
    clean = of_type(run(path, ["corruption"]), "corruption")
    assert clean == []


@pytest.mark.parametrize("captions", [False, True])
def test_decoded_pictures_are_freed_as_the_stream_goes(make, captions):
    """PyAV's frame and its side data refer to each other: a picture whose caption data
    was read lived until Python's cycle collector ran, hundreds of decoded pictures (a
    1080p worker held 240 MB a stream). Now only a stream whose packets carry A/53 data
    reads it, and collects those cycles as it goes."""
    path, _ = make("freed", suffix=".ts", duration_s=12, captions=captions)
    reader = MediaReader(open_input(str(path)), str(path))
    with_captions = 0
    alive = []
    for n, sample in enumerate(reader.samples()):
        if isinstance(sample, VideoFrame):
            with_captions += sample.captions is not None
        if n % 50 == 49:
            alive.append(sum(isinstance(o, av.VideoFrame) for o in gc.get_objects()))
    assert (with_captions > 250) == captions  # 300 pictures, each with its caption data
    assert max(alive) <= 16, alive
