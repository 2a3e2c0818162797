"""Post-hoc calibration: calibrators (TS, CTS, ETS, PTS) and the objectives they are fitted with."""
