"""ATSC A/53 caption data (CEA-608/708 ``cc_data``) read from a coded picture.

Caption encoders put it in the picture itself: an H.264 or HEVC SEI message
(user_data_registered_itu_t_t35) or MPEG-2 picture user data, both marked "GA94"
ahead of the picture's slices. What follows the mark is the structure FFmpeg's
decoders hand on as the frame's A53_CC side data: ``user_data_type_code`` 3, a
byte of flags with ``cc_count``, ``em_data``, then ``cc_count`` three-byte
``cc_data`` triplets.

Read here from the packet rather than from the decoded frame: PyAV's frame and
its side-data container refer to each other, so every picture whose side data
was read lived until Python's cycle collector ran (hundreds of decoded 1080p
pictures, 240 MB a stream). A patrolled stream's pictures that are not decoded
are read the same way.
"""

from __future__ import annotations

__all__ = ["a53_cc_data"]

MARK = b"GA94"
# The SEI or user data comes before the slices: the first bytes of a picture hold it.
SEARCHED_BYTES = 4096
CC_DATA_TYPE = 0x03
PROCESS_CC_DATA = 0x40


def a53_cc_data(coded: bytes) -> bytes | None:
    """The ``cc_data`` triplets of a coded picture, or None when it carries none."""
    at = coded.find(MARK, 0, SEARCHED_BYTES)
    if at < 0:
        return None
    # H.264 and HEVC escape 00 00 0x in a NAL unit's payload as 00 00 03 0x; the
    # longest cc_data (31 triplets) and its header fit the next 100 bytes unescaped.
    tail = coded[at + len(MARK) : at + len(MARK) + 140].replace(b"\x00\x00\x03", b"\x00\x00")
    if len(tail) < 3 or tail[0] != CC_DATA_TYPE or not tail[1] & PROCESS_CC_DATA:
        return None
    count = tail[1] & 0x1F
    data = tail[3 : 3 + 3 * count]
    return data if data and len(data) == 3 * count else None
