"""Held-out tests of a pretrained checkpoint: SpeedNet's speed test and VCOP retrieval.
``python -m jobs.evaluate`` is the command."""
