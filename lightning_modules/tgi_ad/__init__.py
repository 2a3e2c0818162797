"""Text-guided variational image generation for anomaly detection (Lee & Choi, CVPR 2024)."""
