"""On-demand benchmarks of the book: build times and LeNet training throughput (not unit tests)."""
