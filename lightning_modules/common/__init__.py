"""Pieces two or more methods share: backbones, spectral ops, metrics, result tables, the detection base."""
