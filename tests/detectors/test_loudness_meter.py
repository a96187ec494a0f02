"""The BS.1770 meter against the EBU Tech 3341/3342 reference signals."""

import numpy as np
import pytest

from avwatch.detectors.loudness.meter import LoudnessMeter


def feed(meter: LoudnessMeter, signal: np.ndarray, block: int = 1024) -> list:
    steps = []
    for pos in range(0, signal.shape[1], block):
        steps += meter.feed(
            signal[:, pos : pos + block].astype(np.float32), pos / meter.sample_rate
        )
    return steps


def sine(level_dbfs: float, seconds: float, rate: int = 48000, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 10 ** (level_dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.stack([mono, mono])


@pytest.mark.parametrize("rate", [48000, 44100, 32000, 96000, 192000])
def test_1khz_at_minus_23_dbfs_reads_minus_23_lufs(rate):
    # EBU Tech 3341 case 1: stereo 1 kHz at -23 dBFS is -23.0 LUFS (±0.1).
    meter = LoudnessMeter(rate, ("FL", "FR"))
    steps = feed(meter, sine(-23, 20, rate))
    assert meter.integrated_lufs() == pytest.approx(-23.0, abs=0.1)
    assert steps[-1].momentary_lufs == pytest.approx(-23.0, abs=0.1)
    assert steps[-1].short_term_lufs == pytest.approx(-23.0, abs=0.1)


def test_relative_gate_ignores_quiet_passage():
    # EBU Tech 3341 case 3 shape: -36 / -23 / -36 dBFS, integrated -23 LUFS.
    signal = np.concatenate([sine(-36, 10), sine(-23, 60), sine(-36, 10)], axis=1)
    meter = LoudnessMeter(48000, ("FL", "FR"))
    feed(meter, signal)
    assert meter.integrated_lufs() == pytest.approx(-23.0, abs=0.1)


def test_loudness_range_of_two_levels():
    # EBU Tech 3342 case 1: 20 s at -20 LUFS then 20 s at -30 LUFS: LRA 10 LU (±1).
    signal = np.concatenate([sine(-20, 20), sine(-30, 20)], axis=1)
    meter = LoudnessMeter(48000, ("FL", "FR"))
    feed(meter, signal)
    assert meter.loudness_range_lu() == pytest.approx(10.0, abs=1.0)


@pytest.mark.parametrize("rate", [48000, 96000])  # oversampled 4x and 2x
def test_true_peak_sees_the_peak_between_samples(rate):
    # A sine at fs/4 sampled at 45°: every sample is 0.707 of the true peak (-3 dB).
    t = np.arange(rate) / rate
    mono = 0.5 * np.sin(2 * np.pi * (rate / 4) * t + np.pi / 4)
    meter = LoudnessMeter(rate, ("FC",))
    feed(meter, mono[None, :])
    assert 20 * np.log10(meter.sample_peak) == pytest.approx(20 * np.log10(0.5 * 0.7071), abs=0.05)
    assert meter.true_peak_dbtp() == pytest.approx(20 * np.log10(0.5), abs=0.6)


def test_true_peak_at_192_khz_is_the_sample_peak():
    # Already at the rate the others are oversampled to: nothing to interpolate.
    rng = np.random.default_rng(3)
    noise = rng.standard_normal((2, 192000)) * 0.1
    meter = LoudnessMeter(192000, ("FL", "FR"))
    feed(meter, noise, block=1001)
    assert meter.true_peak == meter.sample_peak == pytest.approx(np.abs(noise).max(), rel=1e-6)


def test_surround_weights_and_silent_lfe():
    meter = LoudnessMeter(48000, ("FL", "FR", "FC", "LFE", "BL", "BR"))
    assert list(meter.weights) == [1.0, 1.0, 1.0, 0.0, 1.41, 1.41]


def test_silence_has_no_loudness():
    meter = LoudnessMeter(48000, ("FL", "FR"))
    feed(meter, np.zeros((2, 48000 * 5)))
    assert meter.integrated_lufs() == float("-inf")
    assert meter.loudness_range_lu() == 0.0


@pytest.mark.parametrize(
    ("block", "rate"), [(4800, 48000), (1001, 48000), (1001, 96000)]
)  # 100 ms blocks and odd-sized ones; 4x and 2x oversampling
def test_true_peak_shortcut_equals_oversampling_everything(block, rate):
    # Only windows that can beat the peak so far are interpolated; the result must be
    # exactly the maximum over every interpolated sample of the whole signal.
    rng = np.random.default_rng(7)
    noise = rng.standard_normal((2, 48000 * 4)) * 0.2
    noise[:, 120_000:120_004] *= 4  # a late burst the shortcut must not skip
    meter = LoudnessMeter(rate, ("FL", "FR"))
    feed(meter, noise, block=block)
    taps = meter._tp_phases.shape[1]
    padded = np.concatenate([np.zeros((2, taps - 1)), noise.astype(np.float32)], axis=1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps, axis=-1)
    everything = float(np.abs(windows @ meter._tp_phases.T.astype(np.float64)).max())
    assert meter.true_peak == pytest.approx(everything, rel=1e-6)
