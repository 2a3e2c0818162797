"""Reverse Distillation (Deng & Li, CVPR 2022): a student decoder rebuilds a frozen teacher's features."""
