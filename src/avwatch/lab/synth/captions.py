"""CEA-608 caption data put into H.264 pictures, as ATSC A/53 SEI messages.

Each picture's encoded packet gains an SEI NAL unit (user_data_registered_itu_t_t35,
"GA94", cc_data) before its first slice: one CEA-608 field-1 pair of characters
per picture, as a caption encoder sends them. FFmpeg's H.264 decoder hands the
cc_data back as the picture's A53_CC side data; the engine reads the same bytes from
the coded picture (decode/captions.py).
"""

from __future__ import annotations

from typing import Any

import av

__all__ = ["CAPTION_TEXT", "with_captions"]

CAPTION_TEXT = b"AVWATCH CAPTIONS "


def _odd_parity(byte: int) -> int:
    byte &= 0x7F
    return byte | (0x80 if bin(byte).count("1") % 2 == 0 else 0)


def _sei(first: int, second: int) -> bytes:
    cc_data = bytes([0xC0 | 1, 0xFF])  # process_em_data, process_cc_data, cc_count 1
    cc_data += bytes([0xFC, _odd_parity(first), _odd_parity(second)])  # valid, 608 field 1
    cc_data += b"\xff"  # marker_bits
    payload = b"\xb5\x00\x31GA94\x03" + cc_data  # ITU-T T.35 USA, ATSC, GA94, cc_data
    return b"\x00\x00\x00\x01\x06" + bytes([4, len(payload)]) + payload + b"\x80"


def _before_first_slice(data: bytes, nal: bytes) -> bytes:
    at = 0
    while (found := data.find(b"\x00\x00\x01", at)) >= 0:
        if data[found + 3] & 0x1F in (1, 5):  # a coded slice
            start = found - 1 if found and data[found - 1] == 0 else found
            return data[:start] + nal + data[start:]
        at = found + 3
    return data + nal


def with_captions(packet: av.Packet[Any], index: int) -> av.Packet[Any]:
    """``packet`` (one H.264 picture, Annex B) with the ``index``-th pair of caption
    characters in an SEI message."""
    pair = CAPTION_TEXT[(2 * index) % len(CAPTION_TEXT) :][:2].ljust(2, b" ")
    out = av.Packet(_before_first_slice(bytes(packet), _sei(pair[0], pair[1])))
    fields: dict[str, Any] = {
        "pts": packet.pts,
        "dts": packet.dts,
        "time_base": packet.time_base,
        "stream": packet.stream,
    }
    for name, value in fields.items():
        setattr(out, name, value)
    out.is_keyframe = packet.is_keyframe
    return out
