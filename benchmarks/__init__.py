"""Throughput and overhead measurements (ratios against a reference run in the same process); not tests."""
