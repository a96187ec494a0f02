"""What a programme carries, as its tables say: the PMT's elementary streams (kind,
language) and the SDT's service name.

Read by the transport analyser whenever a table changes, and handed on to the
``structure`` detector, which holds them against ``expect:``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pmt_streams", "sdt_services"]

VIDEO_TYPES = {0x01, 0x02, 0x10, 0x1B, 0x24, 0x33}
AUDIO_TYPES = {0x03, 0x04, 0x0F, 0x11, 0x81, 0x87}
# Descriptors of stream_type 0x06 (PES private data) that say what it carries.
PRIVATE_KINDS = {0x6A: "audio", 0x7A: "audio", 0x7B: "audio", 0x7F: "audio", 0x56: "teletext"}
PRIVATE_KINDS |= {0x59: "subtitles"}
# Descriptors that open with an ISO 639 language code: language, teletext, subtitling.
LANGUAGE_TAGS = (0x0A, 0x56, 0x59)
SERVICE = 0x48


def _descriptors(data: bytes) -> list[tuple[int, bytes]]:
    out, k = [], 0
    while k + 2 <= len(data):
        tag, length = data[k], data[k + 1]
        out.append((tag, data[k + 2 : k + 2 + length]))
        k += 2 + length
    return out


def _kind(stream_type: int, descriptors: list[tuple[int, bytes]]) -> str:
    if stream_type in VIDEO_TYPES:
        return "video"
    if stream_type in AUDIO_TYPES:
        return "audio"
    if stream_type == 0x86:
        return "scte35"
    if stream_type == 0x06:
        for tag, _ in descriptors:
            if tag in PRIVATE_KINDS:
                return PRIVATE_KINDS[tag]
    return "data"


def pmt_streams(body: bytes) -> list[dict[str, Any]]:
    """A PMT section's elementary streams: pid, stream_type, kind, language."""
    info_length = int.from_bytes(body[10:12], "big") & 0x0FFF
    k = 12 + info_length
    streams = []
    while k + 5 <= len(body) - 4:
        stream_type = body[k]
        pid = int.from_bytes(body[k + 1 : k + 3], "big") & 0x1FFF
        es_info = int.from_bytes(body[k + 3 : k + 5], "big") & 0x0FFF
        descriptors = _descriptors(body[k + 5 : k + 5 + es_info])
        language = next(
            (
                d[:3].decode("latin-1").lower()
                for tag, d in descriptors
                if tag in LANGUAGE_TAGS and len(d) >= 3
            ),
            None,
        )
        streams.append(
            {
                "pid": pid,
                "stream_type": stream_type,
                "kind": _kind(stream_type, descriptors),
                "language": language,
            }
        )
        k += 5 + es_info
    return streams


def _text(data: bytes) -> str:
    """A DVB string: a leading byte under 0x20 names a character table (ETSI EN 300
    468 annex A); the common ones read as Latin-1 well enough to compare names."""
    if data[:1] and data[0] < 0x20:
        data = data[3:] if data[0] == 0x10 else data[1:]
    return data.decode("latin-1").strip()


def sdt_services(body: bytes) -> list[dict[str, Any]]:
    """An SDT (actual transport stream) section's services: id, name, provider."""
    services, k = [], 11
    while k + 5 <= len(body) - 4:
        service_id = int.from_bytes(body[k : k + 2], "big")
        loop = int.from_bytes(body[k + 3 : k + 5], "big") & 0x0FFF
        name = provider = None
        for tag, data in _descriptors(body[k + 5 : k + 5 + loop]):
            if tag == SERVICE and len(data) >= 2:
                provider_length = data[1]
                provider = _text(data[2 : 2 + provider_length])
                rest = data[2 + provider_length :]
                name = _text(rest[1 : 1 + rest[0]]) if rest else None
        services.append({"service_id": service_id, "name": name, "provider": provider})
        k += 5 + loop
    return services
