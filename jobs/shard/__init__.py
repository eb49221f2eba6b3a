"""Datasets as users have them on disk into WebDataset shards: ``python -m jobs.shard``."""
