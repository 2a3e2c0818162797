"""LightningModules, one folder per method, and the pieces they share.

* ``routines/``: one base per task (binary detection, spoof detection, anomaly detection, classification,
  topic models), every one named ``...Routine``, on :class:`routines.base.EvaluationRoutine`;
* ``metrics/``: torchmetrics ``Metric`` s and functional scores, the epoch collectors included;
* ``components/``: plain ``torch.nn`` parts two or more methods share (no Lightning import);
* ``post_processing/``: post-hoc calibrators and their fitting objectives;
* ``outputs/``: result tables, pictures, run folders and logging, reading another run's checkpoint;
* one folder per method: ``networks.py`` (plain torch), ``module.py`` (the LightningModule), ``README.md``.
"""
