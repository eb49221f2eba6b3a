"""The commands, the top layer: shard/ (datasets into shards), pretrain/ (the training loop and its
launchers), evaluate/ (held-out tests of a checkpoint) and speed/ (SpeedNet's applications)."""
