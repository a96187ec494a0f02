"""The sound of a synthetic clip: tones, music, speech, beeps and impacts in step with
the pictures, or a recording, normalised to the target loudness with avwatch's own
BS.1770 meter; and the A/V offset applied to it."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from avwatch.detectors.loudness.meter import LoudnessMeter
from avwatch.lab.synth.pictures import FLASH_FRAMES, decoded, event_frames
from avwatch.lab.synth.spec import ClipSpec, Defect


def sound(spec: ClipSpec) -> npt.NDArray[np.float32]:
    rate, n = spec.sample_rate, round(spec.duration_s * spec.sample_rate)
    t = np.arange(n) / rate
    rng = np.random.default_rng(spec.seed)
    if spec.sound == "tone":
        mono = np.sin(2 * np.pi * 1000 * t)
    elif spec.sound == "recorded":
        mono = _recorded_sound(spec, n)
    elif spec.sound == "beeps":
        # The flash pattern's sound: a 1 kHz beep as long as each flash, silence between.
        mono = np.zeros(n)
        length = round(FLASH_FRAMES / float(spec.fps) * rate)
        for i in event_frames(spec, "flash"):
            a = round(i / float(spec.fps) * rate)
            mono[a : a + length] = np.sin(2 * np.pi * 1000 * t[a : a + length])
    elif spec.sound == "impacts":
        # A struck sound at each cut (1 ms attack, 60 ms decay) over a steady music bed,
        # loud enough that the programme's loudness does not swing with the strikes.
        mono = 0.4 * np.sin(2 * np.pi * 220 * t) * (0.8 + 0.2 * np.sin(2 * np.pi * 0.3 * t))
        hit = np.arange(round(0.3 * rate)) / rate
        strike = rng.normal(0, 1, hit.size) * np.minimum(hit / 0.001, 1) * np.exp(-hit / 0.06)
        for i in event_frames(spec, "cuts"):
            a = round(i / float(spec.fps) * rate)
            part = mono[a : a + strike.size]
            part += strike[: part.size]
    elif spec.sound == "music":
        notes = [110, 220, 277.2, 329.6, 440, 659.3]
        mono = np.zeros(n)
        for k, f in enumerate(notes):
            swell = 0.7 + 0.3 * np.sin(2 * np.pi * 0.5 * t + k)
            mono += (0.6 / (k + 1)) * np.sin(2 * np.pi * f * t + k) * swell
    else:  # speech-like: syllables of shaped noise and voiced buzz, with short pauses
        syllable = (np.sin(2 * np.pi * 4.0 * t) > -0.2) & (np.sin(2 * np.pi * 0.37 * t) > -0.7)
        voiced = np.sign(np.sin(2 * np.pi * 140 * t)) * 0.3 + rng.normal(0, 0.2, n)
        kernel = np.hanning(64)
        voiced = np.convolve(voiced, kernel / kernel.sum(), mode="same")
        # Pauses keep a room-tone floor 30 dB down: real speech is never digital silence.
        mono = voiced * np.where(syllable, 1.0, 0.03)
    stereo = np.stack([np.asarray(mono, dtype=np.float64)] * spec.channels)
    if spec.centre_only and spec.channels == 6:
        stereo[[0, 1, 3, 4, 5]] = 0.0  # FL FR LFE BL BR quiet: dialogue in FC
    if spec.sound == "none":
        return np.zeros((spec.channels, n), np.float32)
    meter = LoudnessMeter(rate, channel_names(spec.channels))
    meter.feed(stereo.astype(np.float32), 0.0)
    gain = 10 ** ((spec.level_lufs - meter.integrated_lufs()) / 20)
    return (stereo * gain).astype(np.float32)


def _recorded_sound(spec: ClipSpec, n: int) -> npt.NDArray[np.float64]:
    """The recording of ``spec.sound_file``, mono at the clip's rate, looped to ``n`` samples."""
    if spec.sound_file is None:
        raise ValueError('sound="recorded" needs a sound_file')
    resampler = av.AudioResampler(format="dbl", layout="mono", rate=spec.sample_rate)
    parts = []
    with av.open(spec.sound_file) as source:
        for frame in decoded(source, source.streams.audio[0]):
            parts += [f.to_ndarray()[0] for f in resampler.resample(frame)]
    parts += [f.to_ndarray()[0] for f in resampler.resample(None)]
    once = np.concatenate(parts)
    return np.resize(once, n)


def channel_names(channels: int) -> tuple[str, ...]:
    return {1: ("FC",), 2: ("FL", "FR"), 6: ("FL", "FR", "FC", "LFE", "BL", "BR")}.get(
        channels, tuple(f"C{i}" for i in range(channels))
    )


def layout(channels: int) -> str:
    return {1: "mono", 2: "stereo", 6: "5.1"}.get(channels, f"{channels}c")


def shifted(
    pcm: npt.NDArray[np.float32], rate: int, offsets: list[Defect]
) -> npt.NDArray[np.float32]:
    """The sound with each av_offset span playing what was meant ``offset_ms`` earlier
    (audio late) or later (audio early) than the pictures."""
    out = pcm.copy()
    for d in offsets:
        a, b = round(d.start * rate), min(round(d.end * rate), pcm.shape[1])
        shift = round(float(d.params.get("offset_ms", 0)) * rate / 1000)
        source = np.clip(np.arange(a, b) - shift, 0, pcm.shape[1] - 1)
        out[:, a:b] = pcm[:, source]
    return out
