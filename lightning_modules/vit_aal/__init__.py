"""ViT with the adaptive attention link regulariser (arXiv 2211.13852): CNN channel attention linked to ViT heads."""
