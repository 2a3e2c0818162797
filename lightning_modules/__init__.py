"""LightningModules, one folder per method, and the pieces they share (common/)."""
