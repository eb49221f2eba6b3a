"""The DALI graph: encoded videos and their plans in, augmented clips out. One graph for CPU and GPU.

It reads the feeds of ``pipeline.batches`` (the contract, documented there). Only the decoder's
backend changes between a GPU (``mixed``: NVDEC; or the CPU decoder, then the frames copied to the
GPU) and a CPU machine; every later op runs where its input is. On a host without a GPU the loader
uses the CPU path (``pipeline.torch_augment``) instead, unless asked for ``decoder="dali"``.
"""

from __future__ import annotations

from nvidia.dali import fn, pipeline_def, types

from pipeline.augment import IMAGENET_MEAN, IMAGENET_STD
from pipeline.batches import FEEDS

FEED_TYPES = {
    "encoded": types.UINT8,
    "frames": types.INT32,
    "order": types.INT32,
    "resize": types.FLOAT,
    "size": types.FLOAT,
    "matrix": types.FLOAT,
    "hue": types.FLOAT,
    "saturation": types.FLOAT,
    "value": types.FLOAT,
    "contrast": types.FLOAT,
    "sigma": types.FLOAT,
}
assert tuple(FEED_TYPES) == FEEDS


def feeds_for(antialias: bool, colour: bool, blur: bool) -> tuple[str, ...]:
    """The feeds a graph with these options reads, in the order its source must return them."""
    return tuple(
        name
        for name in FEEDS
        if not (
            (name == "resize" and not antialias)
            or (name in ("hue", "saturation", "value", "contrast") and not colour)
            or (name == "sigma" and not blur)
        )
    )


def build(
    source,
    *,
    batch_size: int,
    device_id: int | None,
    num_threads: int,
    decode_on: str = "gpu",
    antialias: bool,
    colour: bool,
    blur: bool,
    normalise_pixels: bool,
    blur_kernel: int = 0,
    prefetch: int = 2,
):
    """A built pipeline that pulls batches from ``source``: a DALI batch-mode callable returning the
    feeds ``feeds_for(antialias, colour, blur)`` names, in that order. ``blur_kernel``: the blur's
    window side (0: DALI derives it from each sigma). ``decode_on``: with a ``device_id``, ``gpu``
    decodes on NVDEC and ``cpu`` on the CPU, the augmentation staying on the GPU either way."""
    on_nvdec = device_id is not None and decode_on == "gpu"

    names = feeds_for(antialias, colour, blur)

    @pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=prefetch)
    def video_pipeline():
        feed = dict(
            zip(
                names,
                fn.external_source(
                    source=source, num_outputs=len(names), batch=True, dtype=[FEED_TYPES[n] for n in names]
                ),
            )
        )
        encoded, frames, order, size, matrix = (feed[n] for n in ("encoded", "frames", "order", "size", "matrix"))
        video = fn.decoders.video(
            encoded, device="mixed" if on_nvdec else "cpu", frames=frames, pad_mode="none"
        )  # plans never ask past the end: an error here is a bug
        if device_id is not None and not on_nvdec:
            video = video.gpu()
        video = fn.sequence_rearrange(video, new_order=order)
        if antialias:
            video = fn.resize(video, size=feed["resize"], antialias=True, interp_type=types.INTERP_LINEAR)
        video = fn.warp_affine(
            video, matrix=fn.per_frame(matrix), size=size, fill_value=0, interp_type=types.INTERP_LINEAR
        )
        if colour:
            video = fn.hsv(
                video,
                hue=fn.per_frame(feed["hue"]),
                saturation=fn.per_frame(feed["saturation"]),
                value=fn.per_frame(feed["value"]),
            )
            video = fn.brightness_contrast(video, contrast=fn.per_frame(feed["contrast"]))
        if blur:
            window = {"window_size": blur_kernel} if blur_kernel else {}
            video = fn.gaussian_blur(video, sigma=fn.per_frame(feed["sigma"]), **window)
        if normalise_pixels:
            return fn.crop_mirror_normalize(
                video, dtype=types.FLOAT, output_layout="FCHW", mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD)
            )
        return video  # uint8 FHWC, for previews

    pipe = video_pipeline()
    pipe.build()
    return pipe
