"""Synthetic clips with defects at exact, known places — the ground truth for tests,
the demo and the corpus.

Defects are applied to the raw pictures and samples before encoding, so the
truth is exact by construction. Pictures are made as luma planes (yuv420p with
neutral chroma); sound is normalised to the target loudness with avwatch's own
BS.1770 meter before the defects are applied.

``spec`` says what a clip is, ``pictures`` and ``sounds`` make its raw content,
and this module encodes them with the defects and returns the truth.
"""

from avwatch.lab.synth.encode import make_clip
from avwatch.lab.synth.spec import ClipSpec, Defect, Picture, Sound, offset_truth, parse_defect

__all__ = ["ClipSpec", "Defect", "Picture", "Sound", "make_clip", "offset_truth", "parse_defect"]
