"""Benchmarks on the selected cluster: `make benchmark` runs `python -m
benchmarks` through scripts/with-cluster. Every figure is the median of --runs
runs. Each step is a module of benchmarks/steps and writes its own report in
docs/; bench.py holds what the steps share."""
