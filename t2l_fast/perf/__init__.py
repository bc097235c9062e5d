"""Measurement helpers shared by the benchmarks: timers, reports."""
