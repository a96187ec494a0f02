"""Live input read in batches: how long a caught-up reader waits, and that a UDP
stream read that way arrives whole."""

from __future__ import annotations

import itertools
import socket
import threading
import time

import pytest
from helpers import free_port

from avwatch.input.batching import Batcher
from avwatch.input.udp import UdpTsReader
from avwatch.lab.bench.streams import most_that_pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_source_that_buffers_without_limit_waits_the_whole_batch():
    clock = FakeClock()
    batcher = Batcher(0.4, clock=clock, sleep=clock.sleep)
    batcher.wait(0)  # nothing read yet: the first data is awaited, not delayed
    batcher.wait(5000)
    batcher.wait(9000)
    assert clock.slept == [0.4, 0.4]


def test_a_bounded_buffer_waits_only_once_the_rate_is_known_and_within_what_it_holds():
    clock = FakeClock()
    # 100 kB of buffer at 1 MB/s fills in 0.1 s: wait half of that, not the 0.4 s asked.
    batcher = Batcher(0.4, capacity_bytes=100_000, clock=clock, sleep=clock.sleep)
    assert batcher.hold_s(1000) == 0.0  # the rate is not known yet
    clock.now += 0.5
    assert batcher.hold_s(501_000) == 0.0  # half a second is not enough to know it
    clock.now += 0.5
    assert batcher.hold_s(1_001_000) == pytest.approx(0.05)
    # A slow stream: the buffer holds more than the batch, so the batch it is.
    slow = Batcher(0.4, capacity_bytes=100_000, clock=clock, sleep=clock.sleep)
    slow.hold_s(1000)
    clock.now += 2.0
    assert slow.hold_s(21_000) == 0.4


def test_a_batch_is_counted_from_when_the_reader_emptied_its_source():
    """A datagram that came the moment after a read emptied the socket does not make the
    next read a batch of one: the wait runs from the emptying (a CI run saw reads
    0.0004 s apart), and a reader busy for longer than a batch does not wait at all."""
    clock = FakeClock()
    batcher = Batcher(0.3, clock=clock, sleep=clock.sleep)
    batcher.wait(1000)
    emptied = clock.now
    clock.now += 0.1  # decoding what was read
    batcher.wait(2000, since=emptied)
    clock.now += 0.5
    batcher.wait(3000, since=clock.now - 0.5)
    assert clock.slept == [0.3, pytest.approx(0.2)]


def test_no_batch_means_no_wait():
    clock = FakeClock()
    Batcher(0.0, clock=clock, sleep=clock.sleep).wait(10_000)
    assert clock.slept == []


def read_udp_stream(batch_s: float, seconds: float = 2.5) -> tuple[list[float], bytes, bytes]:
    """Send ``seconds`` of numbered 1316-byte datagrams at a steady pace to a reader with
    ``batch_s``; returns when each read returned, what was read and what was sent."""
    port = free_port(socket.SOCK_DGRAM)
    reader = UdpTsReader(f"udp://127.0.0.1:{port}", 2.0, 2.0, batch_s=batch_s)
    sent = bytearray()
    count = int(seconds / 0.004)  # 250 datagrams a second: 2.6 Mb/s

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            start = time.monotonic()
            for i in range(count):
                datagram = i.to_bytes(4, "big") * (1316 // 4)
                sent.extend(datagram)
                sock.sendto(datagram, ("127.0.0.1", port))
                time.sleep(max(0.0, start + (i + 1) * 0.004 - time.monotonic()))

    thread = threading.Thread(target=send)
    thread.start()
    received, returns = bytearray(), []
    buffer = bytearray(512 * 1024)
    try:
        while len(received) < count * 1316:
            n = reader.readinto(buffer)
            received.extend(buffer[:n])
            returns.append(time.monotonic())
    finally:
        thread.join()
        reader.close()
    return returns, bytes(received), bytes(sent)


def test_udp_read_in_batches_loses_nothing():
    returns, received, sent = read_udp_stream(batch_s=0.3)
    assert received == sent  # every datagram, in order
    # Once the rate is known (after a second), the reads come a batch apart.
    late = [t for t in returns if t > returns[0] + 1.2]
    gaps = [b - a for a, b in itertools.pairwise(late)]
    assert gaps and min(gaps) >= 0.25
    assert len(late) <= 6


def test_udp_read_without_batches_hands_on_each_datagram_as_it_comes():
    returns, received, sent = read_udp_stream(batch_s=0.0, seconds=1.0)
    assert received == sent
    assert len(returns) > 100  # most reads found one datagram waiting


def test_the_most_streams_search_finds_the_edge_from_above_and_below():
    for limit in (0, 1, 7, 33, 40, 41, 60):
        for start in (1, 20, 40, 55):
            tried: list[int] = []

            def passes(n: int, limit: int = limit, tried: list[int] = tried) -> bool:
                tried.append(n)
                return n <= limit

            assert most_that_pass(passes, start) == limit, (limit, start)
            if abs(limit - start) <= start / 4:  # near the CPU estimate: a few trials
                assert len(tried) <= 8, (limit, start, tried)
