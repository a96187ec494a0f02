"""One stream end to end: detectors fed in PTS order, events paired into incidents,
``check()`` for a file or a bounded window of a live stream, and its report."""
