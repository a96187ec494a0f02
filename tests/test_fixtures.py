"""The shared fixtures themselves: a clip is cached by what it is, not by its name;
under `make test` each group of tests runs on one worker."""

import pytest


def test_one_name_with_two_specs_makes_two_clips(make):
    short, _ = make("same_name", duration_s=1)
    longer, _ = make("same_name", duration_s=2)
    assert short != longer
    assert make("same_name", duration_s=1)[0] == short  # the same spec is made once


def test_make_test_keeps_a_group_on_one_worker(request):
    # xdist keeps a group together by the "@group" it adds to each test's id; pytest
    # 9.2 ignores that, and every group, Ray's too, was then split over the workers.
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("only under make test's --dist loadgroup")
    assert request.node.nodeid.endswith("@test_fixtures")
