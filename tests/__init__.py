"""The test suites; tests.harness and tests.e2e.object_store are shared with the benchmarks."""
