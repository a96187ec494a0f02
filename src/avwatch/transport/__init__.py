"""The MPEG-TS layer: the TR 101 290 analyser over every 188-byte packet, and the
causes it lends to picture damage."""
