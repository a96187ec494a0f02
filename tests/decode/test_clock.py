from fractions import Fraction

import pytest

from avwatch.decode.clock import WRAP_TICKS, PtsClock

TB = Fraction(1, 90000)
FRAME = 3600  # 25 fps in 90 kHz ticks


def test_plain_pts_map_to_seconds():
    clock = PtsClock(TB, wraps=True)
    assert clock.seconds(90000, FRAME) == (1.0, None)
    assert clock.seconds(90000 + FRAME, FRAME) == (pytest.approx(1.04), None)


def test_33_bit_wrap_keeps_time_running_forward():
    clock = PtsClock(TB, wraps=True)
    before, _ = clock.seconds(WRAP_TICKS - FRAME, FRAME)
    after, jump = clock.seconds(0, FRAME)
    assert jump == "pts_wrap"
    assert after - before == pytest.approx(FRAME / 90000)
    assert clock.seconds(FRAME, FRAME)[0] - after == pytest.approx(FRAME / 90000)


def test_backward_jump_is_a_discontinuity_bridged_by_one_frame():
    clock = PtsClock(TB, wraps=True)
    clock.seconds(900000, FRAME)
    t, jump = clock.seconds(90000, FRAME)
    assert jump == "discontinuity"
    assert t == pytest.approx(10.0 + FRAME / 90000)


def test_forward_gap_below_limit_is_kept_as_a_real_gap():
    clock = PtsClock(TB, wraps=True, max_gap_s=60)
    clock.seconds(0, FRAME)
    assert clock.seconds(5 * 90000, FRAME) == (5.0, None)


def test_huge_forward_jump_is_a_discontinuity():
    clock = PtsClock(TB, wraps=True, max_gap_s=60)
    clock.seconds(0, FRAME)
    t, jump = clock.seconds(3600 * 90000, FRAME)
    assert jump == "discontinuity"
    assert t == pytest.approx(FRAME / 90000)


def test_no_wrap_handling_for_containers_without_33_bit_pts():
    clock = PtsClock(Fraction(1, 1000), wraps=False)
    clock.seconds(10_000_000_000, 40)
    assert clock.seconds(10_000_000_040, 40) == (pytest.approx(10_000_000.04), None)
