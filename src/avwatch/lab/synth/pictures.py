"""The pictures of a synthetic clip, as luma planes: drawn patterns, a talking face
whose mouth follows the sound, line-up flashes and cuts, or a recording."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import av
import numpy as np
import numpy.typing as npt

from avwatch.lab.synth.spec import ClipSpec


def decoded(source: Any, stream: Any) -> Iterator[Any]:
    """The frames of ``stream``, past packets that do not decode: real recordings carry
    damage too (Megamind.avi's AC-3 sound ends in a broken packet)."""
    for packet in source.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            continue


def _recorded_frames(spec: ClipSpec) -> Iterator[Any]:
    """A real recording's decoded frames, one per clip frame, looped to the clip's length."""
    assert spec.picture_file is not None
    count = math.ceil(spec.duration_s * float(spec.fps))
    while count:
        with av.open(spec.picture_file) as source:
            for frame in decoded(source, source.streams.video[0]):
                yield frame
                count -= 1
                if not count:
                    return


def _recorded(spec: ClipSpec) -> Iterator[npt.NDArray[np.uint8]]:
    """Luma planes of a real recording at the clip's size."""
    for frame in _recorded_frames(spec):
        grey = frame.reformat(width=spec.width, height=spec.height, format="gray")
        # gray is full range; the clip is limited range like broadcast video.
        full = grey.to_ndarray().astype(np.float32)
        yield (16 + full * (219 / 255)).round().astype(np.uint8)


FLASH_FRAMES = 2  # a line-up flash, and its beep, last two frames


def event_frames(spec: ClipSpec, kind: Literal["flash", "cuts"]) -> list[int]:
    """Frames where an audio-visual event starts: a flash every second from 0.5 s (a
    line-up pattern), or a cut at irregular times (0.6 to 2.5 s apart)."""
    fps = float(spec.fps)
    if kind == "flash":
        times = np.arange(0.5, spec.duration_s - 0.1, 1.0)
    else:
        gaps = np.random.default_rng(spec.seed + 7).uniform(0.6, 2.5, int(spec.duration_s) + 1)
        times = np.cumsum(gaps)
        times = times[times < spec.duration_s - 0.1]
    return [round(float(t) * fps) for t in times]


def _frame_envelope(spec: ClipSpec, pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """RMS of the sound over each frame's display time, 0-1 (1 = its loud syllables)."""
    power = np.square(pcm.astype(np.float64)).mean(axis=0)
    fps = float(spec.fps)
    count = math.ceil(spec.duration_s * fps)
    edges = np.minimum(
        (np.arange(count + 1) / fps * spec.sample_rate).round().astype(int), len(power)
    )
    sums = np.concatenate([[0.0], np.cumsum(power)])
    rms = np.sqrt((sums[edges[1:]] - sums[edges[:-1]]) / np.maximum(np.diff(edges), 1))
    top = np.percentile(rms, 95) or 1.0
    return np.asarray(np.clip(rms / top, 0.0, 1.0))


def _talking_face(
    spec: ClipSpec, envelope: npt.NDArray[np.float64]
) -> Iterator[npt.NDArray[np.float32]]:
    """A drawn presenter whose mouth opens with the sound shown with each frame, so
    the true A/V offset is exact; the head sways, the eyes blink and the background
    drifts, motion that has nothing to do with the sound."""
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fps = float(spec.fps)
    # A graphic in the corner that jumps at random moments: motion with no sound of its own.
    rng = np.random.default_rng(spec.seed + 11)
    jumps = set(np.cumsum(rng.integers(3, 20, len(envelope))).tolist())
    gx, gy = 0, 0
    for i, opening in enumerate(envelope):
        t = i / fps
        img = 70 + 20 * np.sin(xx / (w / 12) + t * 0.8) + 10 * np.cos(yy / (h / 5) - t * 0.5)
        if i in jumps:
            gx, gy = int(rng.integers(0, w // 5)), int(rng.integers(0, h // 3))
        img[gy : gy + h // 6, gx : gx + w // 8] = 220
        cx = w / 2 + 0.04 * w * math.sin(t * 0.7)
        cy = h / 2 + 0.02 * h * math.sin(t * 0.43)
        fh, fw = 0.26 * h, 0.2 * h
        dx, dy = (xx - cx) / fw, (yy - cy) / fh
        face = dx**2 + dy**2 <= 1
        img = np.where(face, 178 - 25 * np.clip(dx**2, 0, 1), img)
        blink = (t % 3.7) < 3 / fps
        for side in (-1, 1):
            ex, ey = dx - side * 0.38, dy + 0.22
            eye = (ex / 0.2) ** 2 + (ey / (0.01 if blink else 0.08)) ** 2 <= 1
            img[eye] = 40
            brow = (np.abs(dy + 0.38) < 0.035) & (np.abs(dx - side * 0.38) < 0.25)
            img[brow] = 60
        img[(np.abs(dx) < 0.06) & (dy > -0.15) & (dy < 0.2)] = 195
        for side in (-1, 1):
            img[((dx - side * 0.1) / 0.05) ** 2 + ((dy - 0.22) / 0.03) ** 2 <= 1] = 90
        mouth_h = 0.02 + 0.12 * float(opening)
        img[(dx / 0.32) ** 2 + ((dy - 0.5) / mouth_h) ** 2 <= 1] = 35
        yield img


def pictures_in_colour(
    spec: ClipSpec, pcm: npt.NDArray[np.float32]
) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]:
    """(luma, chroma) per frame, chroma as yuv420p lays it out under the luma: the
    recording's own with ``spec.colour``, else neutral grey."""
    if spec.picture_file is not None and spec.colour:
        yield from _recorded_in_colour(spec)
        return
    neutral = np.full((spec.height // 2, spec.width), 128, np.uint8)
    for luma in pictures(spec, pcm):
        yield luma, neutral


def _recorded_in_colour(
    spec: ClipSpec,
) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]:
    for frame in _recorded_frames(spec):
        planes = frame.reformat(width=spec.width, height=spec.height, format="yuv420p")
        array = planes.to_ndarray()
        yield array[: spec.height], array[spec.height :]


def pictures(spec: ClipSpec, pcm: npt.NDArray[np.float32]) -> Iterator[npt.NDArray[np.uint8]]:
    """Limited-range luma planes, one per frame (``pcm``: the clip's sound before any
    defect, which a talking face's mouth follows), with the clip's grain."""
    if spec.picture_file is not None:
        yield from _recorded(spec)
        return
    rng = np.random.default_rng(spec.seed)
    if spec.picture == "talking_face":
        drawn = _talking_face(spec, _frame_envelope(spec, pcm))
    else:
        drawn = _drawn(spec, rng)
    for img in drawn:
        if spec.noise_levels:
            img = img + rng.normal(0, spec.noise_levels, img.shape).astype(np.float32)
        yield np.clip(img, 16, 235).astype(np.uint8)


def _drawn(spec: ClipSpec, rng: np.random.Generator) -> Iterator[npt.NDArray[np.float32]]:
    """The synthetic pictures other than the talking face, before grain (``rng`` gives
    the texture of the still ones)."""
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = rng.integers(0, 60, size=(h // 8 + 1, w // 8 + 1)).repeat(8, 0).repeat(8, 1)[:h, :w]
    static = (60 + 0.3 * xx / w * 255 * 0.5 + texture).astype(np.float32)
    fps = float(spec.fps)
    flashes = {i + k for i in event_frames(spec, "flash") for k in range(FLASH_FRAMES)}
    cuts = event_frames(spec, "cuts")
    for i in range(math.ceil(spec.duration_s * fps)):
        t = i / fps
        if spec.picture == "flash":
            # A line-up pattern: mid grey with a moving bar, a white flash every second.
            img = np.full((h, w), 235.0 if i in flashes else 60.0, np.float32)
            if i not in flashes:
                img[:, int((t % 1.0) * (w - 8)) :][:, :8] = 120
        elif spec.picture == "cuts":
            # A new shot at each cut: another texture, panning steadily within the shot.
            shot = sum(1 for c in cuts if c <= i)
            shot_rng = np.random.default_rng(spec.seed * 1000 + shot)
            # Sizes follow the picture, so every format sees the same shots.
            size = max(8, w // 20)
            blocks = shot_rng.integers(30, 200, size=(h // size + 1, w // size + 1))
            img = blocks.repeat(size, 0).repeat(size, 1)[:h, :w].astype(np.float32)
            img = np.roll(img, round(t * w / 10), axis=1)
        elif spec.picture == "moving":
            img = 40 + 80 * (1 + np.sin(xx / 37 + t * 3.1)) * (
                0.6 + 0.4 * np.cos(yy / 23 - t * 1.7)
            )
            cx, cy = int((0.5 + 0.4 * math.sin(t * 1.3)) * w), int((0.5 + 0.35 * math.cos(t)) * h)
            img[max(0, cy - 30) : cy + 30, max(0, cx - 40) : cx + 40] = 230
        elif spec.picture == "dark":
            # A night scene: dark, but textured and moving.
            img = 18 + 14 * (1 + np.sin(xx / 11 + yy / 7 + t * 12)) + texture / 12
        elif spec.picture == "static_ticker":
            img = static.copy()
            band = img[int(h * 0.88) :, :]
            band[:] = 30
            phase = int(t * 120)
            cols = (np.arange(w) + phase) % 48 < 30
            band[4:-4, cols] = 200
        else:  # static_small_motion: a still with one small moving object
            img = static.copy()
            cx = int((0.5 + 0.4 * math.sin(t * 2.0)) * (w - 24))
            img[h // 3 : h // 3 + 24, cx : cx + 24] = 235
        yield img
