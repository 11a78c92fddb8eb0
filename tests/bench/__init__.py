"""Tests of the benchmarks: they run and write their report (no timing is asserted)."""
