"""The lab: test media with exact truth (synth, damage, real recordings), the corpus,
its scorer and FFmpeg peer, benchmarks and demo senders.

The engine (input, decode, transport, detectors, analysis, service) never imports
from here; tests hold that line.
"""
