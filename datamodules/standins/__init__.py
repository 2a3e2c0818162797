"""Writers of small stand-in datasets in the real layouts, from real content that packages ship."""
