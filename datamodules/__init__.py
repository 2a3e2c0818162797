"""LightningDataModules, one per on-disk layout, on a shared base (base.py)."""
