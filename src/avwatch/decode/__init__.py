"""Decode once: PyAV's decoders, the PTS clock, and the analysis samples every
detector shares (a small grey picture, float audio blocks, decoder issues)."""
