"""A clip looped seamlessly is one unbroken stream: only its own defects show."""

from __future__ import annotations

from helpers import of_type, run

from avwatch.lab.synth import Defect
from avwatch.lab.tsloop import SeamlessLoop
from avwatch.transport.analyser import TsAnalyzer


def test_three_laps_have_no_transport_errors_and_only_the_clips_defects(make, tmp_path):
    path, _ = make("tsloop", suffix=".ts", duration_s=4, defects=[Defect("black", 1.0, 2.0)])
    loop = SeamlessLoop(path.read_bytes(), 4.0)
    joined = tmp_path / "three.ts"
    joined.write_bytes(b"".join(loop.lap(k) for k in range(3)))
    analyzer = TsAnalyzer()
    analyzer.feed(joined.read_bytes())
    assert dict(analyzer.counts) == {}
    result = run(joined)
    spans = [(round(i.start, 3), round(i.end, 3)) for i in of_type(result, "black")]
    assert spans == [(1.0, 2.0), (5.0, 6.0), (9.0, 10.0)]
    assert {i.type for i in result.incidents} == {"black"}
    assert result.duration_s >= 11.9
