"""Micro-benchmarks (pytest-benchmark); kept out of the default test run (`testpaths = tests`)."""
