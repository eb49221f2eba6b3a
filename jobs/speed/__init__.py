"""SpeedNet's applications on one video: speediness and slow motion, adaptive speedup, activation
maps. Commands: ``python -m jobs.speed.speediness``, ``.speedup``, ``.cam``."""
