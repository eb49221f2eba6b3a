"""Pretraining: the loop (``loop``), its config and shipped configs, checkpoints, learning-rate schedule,
logs, preemption and the submitit launcher. ``python -m jobs.pretrain`` is the command."""
