"""Text-guided variational image generation for anomaly detection (Lee & Choi, CVPR 2024; METHODS.md section 6)."""
