"""Checks users run on their own models and machine: `specdec check lossless` (specdec.check.lossless)."""
