"""Video backbones for speed-based self-supervised learning, behind one interface.

Every backbone is an ``nn.Module`` (subclass of ``models.base.Backbone``) taking clips laid out
(N, C=3, T, H, W) and offering:

- ``forward_features(x) -> (N, C, T', H', W')``: the last conv feature map, the common starting point
  for pooling choices, retrieval features and class-activation maps.
- ``forward(x) -> (N, C)``: the pooled clip embedding; global average pooling, except SpeedNet's
  S3D-G (``S3DG(speednet=True)``), which max-pools over space and then averages over time.
- ``out_channels``: C.
- ``min_input``: class attribute, the smallest (T, H, W) accepted; every size at or above it, odd
  ones included, works in each dimension independently (smaller input raises ``ValueError``).
  Training-mode BatchNorm also needs N * T' * H' * W' > 1.

| name           | network                               | C         | T'                      | H', W'    |
|----------------|---------------------------------------|-----------|-------------------------|-----------|
| ``s3dg``       | S3D-G (``speednet=True``: SpeedNet's) | 1024      | ceil(T/8) (SpeedNet: T) | ceil(/32) |
| ``c3d``        | C3D with BN, conv1-conv5b             | 512       | ceil(T/8)               | ceil(/16) |
| ``r3d18``      | R3D-18 (torchvision's ``r3d_18``)     | 512       | ceil(T/8)               | ceil(/16) |
| ``r3d18_hara`` | Hara et al.'s 3D-ResNet-18 (RSPNet's) | 512       | ceil(T/16)              | ceil(/32) |
| ``r2plus1d18`` | R(2+1)D-18                            | 512       | ceil(T/8)               | ceil(/16) |
| ``r2plus1d10`` | R(2+1)D-10 (RSPNet's [1,1,1,1])       | 512       | ceil(T/8)               | ceil(/16) |
| ``r3d10``      | R3D-10, [1,1,1,1] blocks              | 8 x width | ceil(T/8)               | ceil(/16) |

Every ``min_input`` is (1, 1, 1). ``r3d18_hara`` is the 3D-ResNet-18 that RSPNet's released code
trains (Hara et al.: 7x7x7 stem + max-pool, so T/16 and H/32 and about a fifth of ``r3d18``'s
compute); ``r3d18`` stays torchvision's R3D-18. ``temporal_stride=False`` (the video ResNets) keeps
T' = T.

The video ResNets take ``width`` (64, the published size, by default): ``build_backbone("r3d10",
width=16)`` is the CPU-sized network of the tiny configs.

``build_backbone(name, **kw)`` builds one by name (keywords go to its constructor, e.g.
``build_backbone("s3dg", speednet=True)``). ``SpeedNet`` (``models.speednet``) adds SpeedNet's 1x1
conv to one logit per clip.
"""

from __future__ import annotations

from .base import Backbone
from .c3d import C3D
from .resnet3d import R3D10, R3D18, HaraR3D18, R2Plus1D10, R2Plus1D18, VideoResNet
from .s3dg import S3DG, speednet_pool
from .speednet import SpeedNet

BACKBONES: dict[str, type[Backbone]] = {
    "s3dg": S3DG,
    "c3d": C3D,
    "r3d18": R3D18,
    "r3d18_hara": HaraR3D18,
    "r3d10": R3D10,
    "r2plus1d18": R2Plus1D18,
    "r2plus1d10": R2Plus1D10,
}


def build_backbone(name: str, **kw) -> Backbone:
    """The backbone registered as ``name``, built with ``kw``."""
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}") from None
    return factory(**kw)


__all__ = [
    "BACKBONES",
    "Backbone",
    "C3D",
    "HaraR3D18",
    "R2Plus1D10",
    "R2Plus1D18",
    "R3D10",
    "R3D18",
    "S3DG",
    "SpeedNet",
    "VideoResNet",
    "build_backbone",
    "speednet_pool",
]
