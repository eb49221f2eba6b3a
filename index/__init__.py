"""Retrieval: embeddings of shards, their export to a zarr store, FAISS indexes of the store, and
queries with a video file (``python -m index.query clip.mp4 --k 10``)."""
