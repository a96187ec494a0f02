"""PTS to continuous media seconds: 33-bit wrap-around and discontinuities as data.

MPEG-TS timestamps wrap every 2**33 ticks of 90 kHz (about 26.5 hours), and a
splice or an encoder restart makes them jump. Neither may crash a detector or
fold time backwards, so the clock unwraps the first and bridges the second,
and says which happened.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

__all__ = ["PtsClock"]

WRAP_TICKS = 1 << 33


class PtsClock:
    """Maps one stream's PTS ticks to continuous seconds.

    A forward jump up to ``max_gap_s`` is kept as a real gap (lost data is a
    defect the detectors must see); a larger one, or a step backwards of more
    than ``max_backstep_s``, is a discontinuity and time carries on from the
    previous sample instead.
    """

    def __init__(
        self,
        time_base: Fraction,
        *,
        wraps: bool,
        max_gap_s: float = 60.0,
        max_backstep_s: float = 1.0,
    ) -> None:
        self.time_base = time_base
        self.seconds_per_tick = float(time_base)  # float maths: Fraction is slow per frame
        self.wraps = wraps
        self.max_gap_ticks = int(max_gap_s / time_base)
        self.max_backstep_ticks = int(max_backstep_s / time_base)
        self.offset = 0
        self.last_pts: int | None = None
        self.last_duration = 0

    def seconds(
        self, pts: int, duration_ticks: int
    ) -> tuple[float, Literal["pts_wrap", "discontinuity"] | None]:
        """Continuous seconds for ``pts``, and what kind of jump led to it, if any."""
        event: Literal["pts_wrap", "discontinuity"] | None = None
        if self.last_pts is not None:
            delta = pts - self.last_pts
            if self.wraps and delta < -(WRAP_TICKS // 2):
                self.offset += WRAP_TICKS
                delta += WRAP_TICKS
                event = "pts_wrap"
            elif self.wraps and delta > WRAP_TICKS // 2:  # a late packet from before a wrap
                self.offset -= WRAP_TICKS
                delta -= WRAP_TICKS
            if delta > self.max_gap_ticks or delta < -self.max_backstep_ticks:
                # Carry on right after the previous sample.
                self.offset += self.last_duration - delta
                event = "discontinuity"
        self.last_pts = pts
        self.last_duration = duration_ticks
        return (pts + self.offset) * self.seconds_per_tick, event
