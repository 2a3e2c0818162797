"""One LightningModule base per task, named ...Routine, on the shared EvaluationRoutine."""
