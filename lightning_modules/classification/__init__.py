"""Image classification: one module for many classification methods (calibration, mixing, ViT baselines)."""
