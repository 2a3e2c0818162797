"""Industrial anomaly detection: PatchCore, Reverse Distillation and their shared evaluation routine."""
