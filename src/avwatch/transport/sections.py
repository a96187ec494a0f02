"""PSI sections put back together from TS packet payloads (ISO 13818-1 2.4.4).

A section may start anywhere in a packet (after the ``pointer_field`` of a packet
with payload_unit_start_indicator), span several packets, and be followed by
another section or by stuffing (0xFF) in the same packet. ``SectionAssembler``
takes one PID's payloads in order and hands out each whole section.
"""

from __future__ import annotations

__all__ = ["SectionAssembler"]

MAX_SECTION = 4096  # 12-bit section_length, plus the 3-byte header


class SectionAssembler:
    def __init__(self) -> None:
        self._partial = bytearray()
        self._started = False

    def reset(self) -> None:
        """A packet was lost (continuity error): the section in progress is dropped."""
        self._partial.clear()
        self._started = False

    def feed(self, payload: bytes, unit_start: bool) -> list[bytes]:
        """One packet's payload; returns the sections it completed, in order."""
        if unit_start:
            if not payload:
                return []
            pointer = payload[0]
            if self._started:  # the bytes before the new section end the one in progress
                self._partial += payload[1 : 1 + pointer]
            done = self._whole()
            self._partial = bytearray(payload[1 + pointer :])
            self._started = True
            return done + self._whole()
        if not self._started:
            return []  # joined mid-section: wait for the next start
        self._partial += payload
        return self._whole()

    def _whole(self) -> list[bytes]:
        """The whole sections at the front of what is gathered, taken out of it."""
        done = []
        while len(self._partial) >= 3 and self._partial[0] != 0xFF:
            length = 3 + (((self._partial[1] & 0x0F) << 8) | self._partial[2])
            if length > MAX_SECTION:
                self.reset()
                break
            if len(self._partial) < length:
                break
            done.append(bytes(self._partial[:length]))
            del self._partial[:length]
        if self._partial[:1] == b"\xff":  # stuffing to the end of the packet
            self._partial.clear()
            self._started = False
        return done
