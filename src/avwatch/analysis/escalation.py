"""When a patrolled stream is analysed in full: after a sign of trouble, and in turn.

A patrolled stream (``analysis: patrol``) has its keyframes decoded, its sound
and transport in full. ``Escalation`` decides, keyframe by keyframe (the
reader asks ``full_wanted``), whether the next GOP is decoded in full instead:

- for ``escalate_s`` after a sign of trouble (``sign``: an incident opening, a
  transport error, a detector's run beginning: a black or unchanged keyframe,
  silence starting; the input coming back), so that the full detectors
  confirm, date the end of, and describe what patrol saw;
- for ``rotate_for_s`` every ``rotate_every_s`` (at a phase of the stream's
  own), so that what patrol cannot see (lip sync, damage between keyframes,
  dropped frames) is sampled on every stream.

Full analysis costs several patrolled streams' CPU, so a worker holds a budget
of full slots (``FullSlots``) shared by its streams: a stream that finds none
free stays in patrol and counts the refusal. Time is the caller's clock: media
time for ``check``, the wall clock for a live monitor.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable

from avwatch.config import Escalation as EscalationConfig

__all__ = ["Escalation", "FullSlots"]


class FullSlots:
    """How many streams may be analysed in full at once (one worker's budget)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._holders: set[object] = set()
        self._lock = threading.Lock()

    def take(self, holder: object) -> bool:
        with self._lock:
            if holder in self._holders:
                return True
            if len(self._holders) >= self.count:
                return False
            self._holders.add(holder)
            return True

    def give_back(self, holder: object) -> None:
        with self._lock:
            self._holders.discard(holder)

    @property
    def in_use(self) -> int:
        return len(self._holders)


class Escalation:
    """One patrolled stream's switch between patrol and full analysis."""

    def __init__(
        self,
        config: EscalationConfig,
        clock: Callable[[], float],
        *,
        slots: FullSlots | None = None,
        name: str = "",
    ) -> None:
        self.config = config
        self.clock = clock
        self.slots = slots
        self.trouble_until = -1.0
        self.why = ""
        # Each stream's slice comes at its own moment in the rotation: slices of the
        # streams of one worker spread out instead of all asking for a slot at once.
        every = config.rotate_every_s
        self.phase = (zlib.crc32(name.encode()) % 1000) / 1000 * every if every else 0.0
        self.full = False
        self.escalations = 0  # patrol to full for trouble
        self.rotations = 0  # patrol to full for the stream's slice
        self.refused = 0  # full wanted, no slot free
        self._lock = threading.Lock()

    def sign(self, why: str) -> None:
        """Trouble seen (by the analysis): full analysis for ``escalate_s`` from now."""
        if not self.config.escalate_s:
            return
        with self._lock:
            self.trouble_until = self.clock() + self.config.escalate_s
            self.why = why

    def _in_slice(self, now: float) -> bool:
        every, length = self.config.rotate_every_s, self.config.rotate_for_s
        return bool(every and length) and (now - self.phase) % every < length

    def full_wanted(self) -> bool:
        """Asked at each keyframe: is the GOP it starts decoded in full?"""
        with self._lock:
            now = self.clock()
            trouble = now < self.trouble_until
            wanted = trouble or self._in_slice(now)
            if wanted and not self.full:
                if self.slots is not None and not self.slots.take(self):
                    self.refused += 1
                    return False
                self.full = True
                if trouble:
                    self.escalations += 1
                else:
                    self.rotations += 1
            elif not wanted and self.full:
                self.full = False
                if self.slots is not None:
                    self.slots.give_back(self)
            return self.full

    def release(self) -> None:
        """The stream stops (or reconnects): its slot is free for the others."""
        with self._lock:
            self.full = False
            if self.slots is not None:
                self.slots.give_back(self)

    def status(self) -> dict[str, object]:
        return {
            "analysing": "full" if self.full else "patrol",
            # Keyframes alone carry nothing to match the sound against: never "in sync".
            "lip_sync": "judged" if self.full else "not judged",
            "why": (self.why if self.full and self.clock() < self.trouble_until else "")
            or ("rotation" if self.full else ""),
            "escalations": self.escalations,
            "rotations": self.rotations,
            "full_refused": self.refused,
        }
