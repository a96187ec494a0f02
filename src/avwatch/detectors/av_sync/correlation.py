"""Audio/video offset by cross-correlating what changes on screen with what changes in sound.

The visual side is one number per frame: how much the picture (or the mouth of
a detected face) changed since the previous frame. The audio side is the
change of the audio's RMS level between the window a frame is shown in and the
window before it, computed for every candidate lag from a 1 ms energy grid.
The lag at which the two series correlate best is the offset: positive means
the sound of an event comes after its picture (audio late).

A flash with a beep, a cut with a bang, a mouth opening on a syllable all
change both series at once; content without such events gives a flat or
ambiguous correlation, and the estimate says so (``known`` False) rather than
guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from avwatch.types import AudioBlock

__all__ = ["AudioLevels", "OffsetEstimate", "estimate_offset"]

FloatArray = npt.NDArray[np.float64]
GRID_HZ = 1000  # the energy grid: one value per millisecond
MAX_COARSE_STEP_MS = 10  # the lag search steps this far at most, then refines to 1 ms


class AudioLevels:
    """Mean-square audio power on a 1 ms grid, kept for the last ``keep_s`` seconds.

    Grid cell ``i`` covers media time [i, i + 1) ms and averages every sample
    placed in it (blocks rarely end on a cell boundary); cells no audio reached
    are NaN, so an estimate never reads a gap as silence.
    """

    def __init__(self, keep_s: float) -> None:
        self.keep = int(keep_s * GRID_HZ)
        self.base = 0  # grid index of the first kept cell
        # Sums (row 0) and sample counts (row 1) of the kept cells, from column ``_from``
        # of a buffer twice as long: blocks add in place, and the cells move back to
        # the front only when the buffer is full. Columns past the kept cells are zero.
        self._grid: FloatArray = np.zeros((2, 2 * self.keep))
        self._from = 0
        self._cells = 0

    @property
    def sums(self) -> FloatArray:
        return self._grid[0, self._from : self._from + self._cells]

    @property
    def counts(self) -> FloatArray:
        return self._grid[1, self._from : self._from + self._cells]

    @property
    def end(self) -> int:
        """Grid index one past the last cell with audio."""
        return self.base + self._cells

    @property
    def power(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / self.counts, np.nan)

    def feed(self, block: AudioBlock) -> None:
        samples = block.samples
        n = samples.shape[1]
        if n == 0:
            return
        # Power averaged over channels: summing the signals could cancel out-of-phase ones.
        power = np.einsum("ij,ij->j", samples, samples) / samples.shape[0]
        # The block's samples split at the grid's millisecond boundaries.
        start_ms = block.time * GRID_HZ
        first = math.floor(start_ms)
        cells = math.floor(start_ms + n * GRID_HZ / block.sample_rate - 1e-9) - first + 1
        edges = np.empty(cells + 1, dtype=np.int64)
        edges[0], edges[-1] = 0, n
        inner = (np.arange(first + 1, first + cells) - start_ms) * (block.sample_rate / GRID_HZ)
        np.clip(np.ceil(inner - 1e-9), 0, n, out=inner)
        edges[1:-1] = inner
        counts = np.diff(edges).astype(np.float64)
        # Each cell's sum. reduceat sums from one start to the next, so only cells that
        # hold samples are named (an empty cell would get its neighbour's sample).
        filled = counts > 0
        sums = np.zeros(cells)
        sums[filled] = np.add.reduceat(power, edges[:-1][filled], dtype=np.float64)
        if self._cells == 0:
            self.base, self._from = first, 0
        elif first < self.base:
            return  # older than what is kept
        elif first + cells - self.keep >= self.base + self._cells:
            # After a gap longer than what is kept nothing before this block stays: start
            # afresh, the block at the end of the kept span and missing cells before it.
            self._grid[:, : self._from + self._cells] = 0.0
            self.base, self._from, self._cells = first - max(0, self.keep - cells), 0, 0
        offset = first - self.base
        reach = offset + cells  # kept cells once this block is in (a gap stays zero: NaN)
        if self._from + reach > self._grid.shape[1]:
            self._to_front(reach)
        at = self._from + offset
        self._grid[0, at : at + cells] += sums
        self._grid[1, at : at + cells] += counts
        self._cells = max(self._cells, reach)
        if self._cells > self.keep:
            drop = self._cells - self.keep
            self._from += drop
            self.base += drop
            self._cells = self.keep

    def _to_front(self, reach: int) -> None:
        """Move the kept cells to the start of a zeroed buffer with room for ``reach``."""
        kept = self._grid[:, self._from : self._from + self._cells].copy()
        if reach > self._grid.shape[1]:  # one block longer than the buffer: grow it
            self._grid = np.zeros((2, reach + self.keep))
        else:
            self._grid[:] = 0.0
        self._grid[:, : self._cells] = kept
        self._from = 0


@dataclass(frozen=True)
class OffsetEstimate:
    offset_ms: float
    correlation: float
    """Pearson correlation of the two activity series at the best lag."""
    margin: float
    """How far the best lag's correlation stands above the next local peak."""
    frames: int
    known: bool
    peak_z: float = 0.0
    """How many robust standard deviations (1.4826 MAD) the best lag's correlation
    stands above the median over all lags: chance alignments of unrelated pictures
    and sound stay under 6, events seen and heard together far above it."""
    one_moment: float = 0.0
    """The largest share of the correlation that one frame carries."""


def estimate_offset(
    frame_ms: npt.NDArray[np.int64],
    frame_duration_ms: int,
    visual: FloatArray,
    levels: AudioLevels,
    max_lag_ms: int,
    min_correlation: float,
    min_margin: float,
    min_peak_sigmas: float = 0.0,
    max_one_moment: float = 1.0,
) -> OffsetEstimate | None:
    """Best lag of the audio activity against ``visual`` (one value per frame shown at
    ``frame_ms``, its change since the frame before). None when the window has too
    little clean audio or no variation to correlate."""
    d = frame_duration_ms
    counts = levels.counts
    filled = counts > 0
    # A frame is usable when every grid cell any lag could read holds audio.
    first = frame_ms - d - max_lag_ms - levels.base
    last = frame_ms + d + max_lag_ms - levels.base
    inside = (first >= 0) & (last <= len(counts))
    frame_ms, visual = frame_ms[inside], visual[inside]
    first = first[inside]
    if len(frame_ms) < 8 or visual.max() == visual.min():
        return None
    if not filled.all():  # a gap in the audio: only frames clear of it are usable
        missing = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(~filled, out=missing[1:])
        clean = missing[last[inside]] - missing[first] == 0
        if clean.sum() < 8:
            return None
        frame_ms, visual = frame_ms[clean], visual[clean]
    power = np.divide(levels.sums, counts, out=np.zeros(len(counts)), where=filled)
    energy = np.zeros(len(counts) + 1)
    np.cumsum(power, out=energy[1:])
    # RMS of the d ms before each grid boundary: level[i] covers cells [i - d, i).
    level = np.zeros_like(energy)
    mean_square = energy[d:] - energy[:-d]
    np.maximum(mean_square, 0, out=mean_square)  # rounding in the running sum
    mean_square /= d
    np.sqrt(mean_square, out=level[d:])
    # How much the level changed from the frame before to the frame shown at boundary i.
    change = np.abs(level[d:] - level[:-d])
    v = visual - visual.mean()
    v /= np.linalg.norm(v)
    frames = len(frame_ms)

    def correlate(first_lag: int, last_lag: int, step: int) -> FloatArray:
        """r at the lags first_lag, first_lag + step, ... up to last_lag."""
        count = (last_lag - first_lag) // step + 1
        # Row f holds frame f's level change at each lag: rows of a strided view.
        lagged = sliding_window_view(change, (count - 1) * step + 1)[:, ::step]
        a = lagged[frame_ms + (first_lag - levels.base)]  # (frames, lags)
        # Pearson's r against v, which has mean 0 and norm 1: centring a changes
        # nothing in v @ a, so each column needs only its sum and sum of squares.
        total = a.sum(axis=0)
        spread = np.einsum("ij,ij->j", a, a) - total * total / frames
        products = v @ a
        r = np.zeros(count)
        # A flat column (no audio change at that lag) has no correlation; the test is
        # relative, as rounding leaves a flat column's spread a hair above zero.
        varied = spread > 1e-12 * (total * total / frames)
        r[varied] = products[varied] / np.sqrt(spread[varied])
        return r

    # A peak is about two frames wide: a coarse step of half a frame cannot step over it.
    step = max(1, min(MAX_COARSE_STEP_MS, d // 2))
    coarse = correlate(-max_lag_ms, max_lag_ms, step)
    best = int(np.argmax(coarse))
    best_lag = -max_lag_ms + best * step
    fine_from = max(-max_lag_ms, best_lag - step)
    fine = correlate(fine_from, min(max_lag_ms, best_lag + step), 1)
    peak = float(fine.max())
    offset = fine_from + int(np.argmax(fine))
    margin = peak - _next_peak(coarse, best)
    # A best lag at the edge of the range may be the shoulder of a peak beyond it.
    inside_range = abs(offset) <= max_lag_ms - 2 * d
    centre = float(np.median(coarse))
    spread = 1.4826 * float(np.median(np.abs(coarse - centre)))
    peak_z = (peak - centre) / spread if spread > 0 else math.inf
    # Evidence from several moments: one event (a freeze's end, a cut) against one onset
    # in music correlates well at one lag, and every window holding it agrees.
    heard = change[frame_ms + (offset - levels.base)]
    moments = v * (heard - heard.mean())
    total = float(moments.sum())
    one_moment = float(moments.max()) / total if total > 0 else 1.0
    return OffsetEstimate(
        offset_ms=float(offset),
        correlation=peak,
        margin=margin,
        frames=len(frame_ms),
        known=peak >= min_correlation
        and margin >= min_margin
        and peak_z >= min_peak_sigmas
        and one_moment <= max_one_moment
        and inside_range,
        peak_z=peak_z,
        one_moment=one_moment,
    )


def _next_peak(r: FloatArray, best: int) -> float:
    """The highest local maximum of ``r`` other than the one at ``best`` (the ends of
    the lag range count as maxima: a rising edge there may hide a peak beyond it)."""
    padded = np.concatenate([[-np.inf], r, [-np.inf]])
    is_peak = (padded[1:-1] >= padded[:-2]) & (padded[1:-1] >= padded[2:])
    # The main peak's own plateau and shoulders are not a rival: down from it, each
    # way, to where r rises again.
    rises_before = np.flatnonzero(r[:best] > r[1 : best + 1])  # r[j] > r[j + 1]
    rises_after = np.flatnonzero(r[best + 1 :] > r[best:-1])  # r[best + j + 1] > r[best + j]
    lo = int(rises_before[-1]) + 1 if rises_before.size else 0
    hi = best + int(rises_after[0]) if rises_after.size else len(r) - 1
    is_peak[lo : hi + 1] = False
    rivals = r[is_peak]
    return float(rivals.max()) if rivals.size else float(min(r[0], r[-1]))
