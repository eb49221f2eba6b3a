"""The bottom layer, data: a video file normalised and sharded, read back, planned, decoded,
augmented and batched for the trainer (``loader.VideoLoader`` yields ``batches.Batch``)."""
