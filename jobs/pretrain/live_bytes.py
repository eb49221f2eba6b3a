"""``LiveBytes``: the bytes of tensor storage alive at each moment of code run on fake tensors
(shapes and dtypes, no data: nothing is allocated), their peak, and what held them.

Enter it inside a ``FakeTensorMode`` (``allow_non_fake_inputs=True``): it sees each op the code
calls, above the fake mode, and never the ops a fake kernel runs inside (a decomposition's
temporaries, which a real kernel does not make). Every storage an op creates is counted from that
op until Python frees it (a weak reference on the storage tells when), under the ``category`` set at
the time; ``relabel`` moves one later (a parameter's gradient, say). Views and in-place results
share a storage and count once. Ops whose tensor arguments are all real tensors (a batch's labels
and speeds, which stay on the host) run for real and are not counted, so a check such as
``if (labels < 0).any()`` sees its data as in training.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict

import torch
from torch._subclasses.fake_tensor import FakeTensor, unset_fake_temporarily
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """``live`` bytes by category, their sum ``total``, its largest value ``peak`` and the split at
    that moment ``at_peak``. ``block``: sizes round up to a multiple of it, as an allocator hands
    memory out (PyTorch's CUDA caching allocator: 512 bytes)."""

    def __init__(self, block: int = 1):
        super().__init__()
        self.block = block
        self.category = "other"
        self.live: dict[str, int] = defaultdict(int)
        self.total = 0
        self.peak = 0
        self.at_peak: dict[str, int] = {}
        self._entries: dict[int, list] = {}  # id(storage) -> [category, bytes, weak reference]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if FakeTensor not in types and any(isinstance(a, torch.Tensor) for a in tree_leaves((args, kwargs))):
            with unset_fake_temporarily():  # only real tensors: host-side data, run as in training
                return func(*args, **kwargs)
        out = func(*args, **kwargs)
        for t in tree_leaves(out):
            if isinstance(t, FakeTensor):
                self._count(t.untyped_storage())
        return out

    def relabel(self, tensor: torch.Tensor, category: str) -> None:
        """Count ``tensor``'s storage under ``category`` from now on."""
        entry = self._entries.get(id(tensor.untyped_storage()))
        if entry is not None and entry[0] != category:
            self.live[entry[0]] -= entry[1]
            self.live[category] += entry[1]
            entry[0] = category

    def _count(self, storage: torch.UntypedStorage) -> None:
        size = math.ceil(storage.nbytes() / self.block) * self.block
        key = id(storage)
        entry = self._entries.get(key)
        if entry is None:
            entry = [self.category, 0, weakref.ref(storage, lambda _, key=key: self._free(key))]
            self._entries[key] = entry
        if entry[1] != size:  # new, or resized in place
            self.live[entry[0]] += size - entry[1]
            self.total += size - entry[1]
            entry[1] = size
            if self.total > self.peak:
                self.peak, self.at_peak = self.total, {k: v for k, v in self.live.items() if v}

    def _free(self, key: int) -> None:
        category, size, _ = self._entries.pop(key)
        self.live[category] -= size
        self.total -= size
