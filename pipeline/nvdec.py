"""What NVDEC, the GPU's video decoder, can take: whether this host has it, and the smallest frames.

DALI's ``mixed`` video decoder runs on NVDEC and refuses a stream below the engine's minimum size
("Video is too small"), which a CPU decoder reads fine; a sample like that is sent to a CPU decode
(``pipeline.dali_batches``), not dropped. DALI does not expose the decoder's capabilities, so the
minimums are NVIDIA's published ones (Video Codec SDK, NVDEC application note, "decoder
capabilities", the same on every GPU since Turing): width x height in pixels.
"""

from __future__ import annotations

import ctypes
import functools
import logging

log = logging.getLogger(__name__)

MIN_SIZE = {
    "h264": (48, 16),
    "mpeg4": (48, 16),
    "mpeg2video": (48, 16),
    "vp8": (48, 16),
    "hevc": (144, 144),
    "vp9": (128, 128),
    "av1": (128, 128),
}
UNKNOWN_MIN = (144, 144)  # a codec not in the table: the largest minimum, so a CPU decode, not an error
LIBRARY = "libnvcuvid.so.1"  # the NVDEC user-mode driver; a container gets it with the "video" capability


def fits(codec: str, width: int, height: int) -> bool:
    """Whether NVDEC decodes a ``codec`` stream of ``width`` x ``height``."""
    min_width, min_height = MIN_SIZE.get(codec, UNKNOWN_MIN)
    return width >= min_width and height >= min_height


@functools.cache
def available(library: str = LIBRARY) -> bool:
    """Whether the NVDEC driver library loads. ``torch.cuda.is_available()`` is not enough: a
    container started without the driver's video capability has CUDA but no ``libnvcuvid``, and
    DALI's decoder would fail at the first batch."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


@functools.cache
def usable() -> bool:
    """``available()``, said once in the log when it is not: decoding then moves to the CPU."""
    if not available():
        log.warning(
            "NVDEC is not usable here (%s does not load: a container needs NVIDIA_DRIVER_CAPABILITIES "
            "to include 'video'); DALI decodes on the CPU and augments on the GPU",
            LIBRARY,
        )
    return available()
