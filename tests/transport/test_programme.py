"""What the PMT and SDT say a programme carries."""

from __future__ import annotations

from avwatch.transport.crc import crc32_mpeg
from avwatch.transport.programme import pmt_streams, sdt_services


def _with_crc(body: bytes) -> bytes:
    return body + crc32_mpeg(body).to_bytes(4, "big")


def _es(stream_type: int, pid: int, info: bytes = b"") -> bytes:
    return bytes([stream_type, 0xE0 | pid >> 8, pid & 0xFF, 0xF0, len(info)]) + info


def test_kinds_and_languages_of_a_pmts_streams():
    entries = (
        _es(0x1B, 0x100)
        + _es(0x0F, 0x101, b"\x0a\x04deu\x00")
        + _es(0x06, 0x102, b"\x6a\x01\x00\x0a\x04ENG\x00")  # AC-3 in private data
        + _es(0x06, 0x103, b"\x59\x08deu\x10\x00\x01\x00\x01")  # DVB subtitles
        + _es(0x06, 0x104, b"\x56\x05deu\x09\x00")  # teletext
        + _es(0x86, 0x105)
    )
    head = bytes([0x02, 0xB0, 0, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0])
    streams = pmt_streams(_with_crc(head + entries))
    assert [(s["pid"], s["kind"], s["language"]) for s in streams] == [
        (0x100, "video", None),
        (0x101, "audio", "deu"),
        (0x102, "audio", "eng"),
        (0x103, "subtitles", "deu"),
        (0x104, "teletext", "deu"),
        (0x105, "scte35", None),
    ]


def test_service_names_with_and_without_a_character_table_byte():
    def service(service_id: int, provider: bytes, name: bytes) -> bytes:
        descriptor = bytes([0x01, len(provider)]) + provider + bytes([len(name)]) + name
        loop = bytes([0x48, len(descriptor)]) + descriptor
        return service_id.to_bytes(2, "big") + b"\xfc" + bytes([0x80, len(loop)]) + loop

    head = bytes([0x42, 0xF0, 0, 0, 1, 0xC1, 0, 0, 0, 1, 0xFF])
    body = head + service(1, b"FFmpeg", b"Service01") + service(2, b"\x05TV", b"\x05News 24")
    assert sdt_services(_with_crc(body)) == [
        {"service_id": 1, "name": "Service01", "provider": "FFmpeg"},
        {"service_id": 2, "name": "News 24", "provider": "TV"},
    ]
