"""livefire benchmarks: programs, not tests. `make bench` runs them all and writes bench/results.md."""
