"""The shared fixtures themselves: a clip is cached by what it is, not by its name."""


def test_one_name_with_two_specs_makes_two_clips(make):
    short, _ = make("same_name", duration_s=1)
    longer, _ = make("same_name", duration_s=2)
    assert short != longer
    assert make("same_name", duration_s=1)[0] == short  # the same spec is made once
