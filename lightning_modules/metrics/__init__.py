"""Metrics: torchmetrics Metrics that collect an epoch and the functional scores they compute."""
