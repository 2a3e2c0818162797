"""Style Latent Flows (Choi et al., CVPR 2024): StyleGRU over style-latent differences and the style attention module."""
