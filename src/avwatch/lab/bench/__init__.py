"""Benchmarks: throughput of one file, live decode trials, streams per machine."""
