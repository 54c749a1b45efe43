"""Benchmarks that print figures, run side by side with peers in the same process."""
