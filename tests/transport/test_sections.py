"""PSI sections put back together from packet payloads, however they are cut."""

from __future__ import annotations

from avwatch.transport.sections import SectionAssembler


def _section(table_id: int, body: bytes) -> bytes:
    length = len(body)
    return bytes([table_id, 0x30 | (length >> 8), length & 0xFF]) + body


def test_a_section_spanning_packets_comes_out_whole():
    section = _section(0xFC, bytes(range(256)) * 2)  # 515 bytes: four packets' payloads
    first, rest = b"\x00" + section[:183], section[183:]
    assembler = SectionAssembler()
    assert assembler.feed(first, unit_start=True) == []
    pieces = [rest[i : i + 184] for i in range(0, len(rest), 184)]
    out = [s for piece in pieces for s in assembler.feed(piece, unit_start=False)]
    assert out == [section]


def test_two_sections_in_one_packet_then_stuffing():
    a, b = _section(0xFC, b"\x01" * 20), _section(0xFC, b"\x02" * 30)
    payload = (b"\x00" + a + b).ljust(184, b"\xff")
    assert SectionAssembler().feed(payload, unit_start=True) == [a, b]


def test_a_section_ending_after_the_pointer_of_the_next_packet():
    a, b = _section(0xFC, b"\x03" * 200), _section(0xFC, b"\x04" * 10)
    assembler = SectionAssembler()
    assert assembler.feed(b"\x00" + a[:183], unit_start=True) == []
    tail = a[183:]
    second = bytes([len(tail)]) + tail + b
    assert assembler.feed(second.ljust(184, b"\xff"), unit_start=True) == [a, b]


def test_joined_mid_section_it_waits_for_the_next_start_and_a_loss_drops_the_partial():
    a = _section(0xFC, b"\x05" * 300)
    assembler = SectionAssembler()
    assert assembler.feed(a[100:284], unit_start=False) == []  # the start was never seen
    assert assembler.feed(b"\x00" + a[:183], unit_start=True) == []
    assembler.reset()  # a continuity error: the rest belongs to a broken section
    assert assembler.feed(a[183:367], unit_start=False) == []
