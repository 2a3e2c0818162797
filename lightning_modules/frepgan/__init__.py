"""FrePGAN: frequency-level perturbations for robust deepfake detection (AAAI 2022)."""
