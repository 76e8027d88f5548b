"""Seeded synthetic data generators with ground truth, for the demo, tests and benchmarks."""
