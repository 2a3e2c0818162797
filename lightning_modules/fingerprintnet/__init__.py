"""FingerprintNet: synthesized fingerprints for generated image detection (ECCV 2022)."""
