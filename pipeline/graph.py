"""The DALI graph: encoded videos and their plans in, augmented clips out. One graph for CPU and GPU.

Per sample the Python side feeds (see ``pipeline.batches``): the encoded video; the sorted distinct
frame indices its plan needs (each frame is decoded once, even when clips overlap); the order that
lays those frames out clip after clip; the antialiased resize target; the output size; and, per
frame, the affine crop map and colour parameters. Only the decoder's backend changes between a GPU
(``mixed``: NVDEC) and a CPU machine; every later op runs where its input is.
"""

from __future__ import annotations

from nvidia.dali import fn, pipeline_def, types

from pipeline.augment import IMAGENET_MEAN, IMAGENET_STD

FEEDS = ("encoded", "frames", "order", "resize", "size", "matrix", "hue", "saturation", "value", "contrast", "sigma")
FEED_TYPES = (types.UINT8, types.INT32, types.INT32, types.FLOAT, types.FLOAT, types.FLOAT, types.FLOAT,
              types.FLOAT, types.FLOAT, types.FLOAT, types.FLOAT)


def build(source, *, batch_size: int, device_id: int | None, num_threads: int, colour: bool, blur: bool,
          normalize: bool, prefetch: int = 2):
    """A built pipeline that pulls batches from ``source`` (a DALI batch-mode callable)."""

    @pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=prefetch)
    def video_pipeline():
        encoded, frames, order, resize, size, matrix, hue, saturation, value, contrast, sigma = fn.external_source(
            source=source, num_outputs=len(FEEDS), batch=True, dtype=list(FEED_TYPES))
        video = fn.decoders.video(encoded, device="cpu" if device_id is None else "mixed", frames=frames,
                                  pad_mode="none")  # plans never ask past the end: an error here is a bug
        video = fn.sequence_rearrange(video, new_order=order)
        video = fn.resize(video, size=resize, antialias=True, interp_type=types.INTERP_LINEAR)
        video = fn.warp_affine(video, matrix=fn.per_frame(matrix), size=size, fill_value=0,
                               interp_type=types.INTERP_LINEAR)
        if colour:
            video = fn.hsv(video, hue=fn.per_frame(hue), saturation=fn.per_frame(saturation),
                           value=fn.per_frame(value))
            video = fn.brightness_contrast(video, contrast=fn.per_frame(contrast))
        if blur:
            video = fn.gaussian_blur(video, sigma=fn.per_frame(sigma))
        if normalize:
            return fn.crop_mirror_normalize(video, dtype=types.FLOAT, output_layout="FCHW",
                                            mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD))
        return video  # uint8 FHWC, for previews

    pipe = video_pipeline()
    pipe.build()
    return pipe
