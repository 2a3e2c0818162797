"""Topic-VQ-VAE (Yoo & Choi, AAAI 2024): topics over codebook "conceptual words"."""
