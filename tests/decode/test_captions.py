"""A/53 caption data read from the coded pictures is what FFmpeg's decoder finds."""

from __future__ import annotations

import av
from av.sidedata.sidedata import Type

from avwatch.decode.captions import a53_cc_data


def test_packet_caption_data_is_the_decoders_side_data(make):
    path, _ = make("cc_packets", suffix=".ts", duration_s=4, captions=True)
    from_packets: dict[int, bytes | None] = {}
    from_frames: dict[int, bytes | None] = {}
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.pts is None:
                continue
            from_packets[packet.pts] = a53_cc_data(bytes(packet))
            for frame in packet.decode():
                found = frame.side_data.get(Type.A53_CC)
                from_frames[frame.pts] = None if found is None else bytes(found)
    assert len(from_frames) == 100
    assert all(from_frames.values())  # every picture carries its pair of characters
    assert {pts: from_packets[pts] for pts in from_frames} == from_frames


def test_escaped_and_absent_caption_data():
    # An H.264 payload escapes 00 00 0x as 00 00 03 0x; a picture without the mark,
    # or with another kind of GA94 user data (bar data: type 6), has no captions.
    cc = bytes([0xFC, 0x00, 0x00, 0xFC, 0x80, 0x80])
    escaped = b"\x06\x04\x10\xb5\x00\x31GA94\x03\xc2\xff" + cc.replace(b"\x00\x00", b"\x00\x00\x03")
    assert a53_cc_data(escaped) == cc
    assert a53_cc_data(b"\x00\x00\x01\x65" + bytes(100)) is None
    assert a53_cc_data(b"GA94\x06\xc2\xff" + cc) is None
    assert a53_cc_data(b"GA94\x03\xc5\xff" + cc) is None  # says 5 triplets, holds 2
