"""ViT with the adaptive attention link regularizer (arXiv 2211.13852): CNN channel attention linked to ViT heads."""
