"""The huge-page arena the quantized weights live in: 64-byte aligned blocks backed by 2 MB pages.

Why: a token streams ~1.1 GB of weights; with 4 KB pages every 4 KB costs a TLB miss (see arena_empty)."""
from __future__ import annotations

import numpy as np
import torch

HUGE_PAGE = 2 << 20
# madvise the arena for 2 MB pages. Measured on the 1.5B int4, same minute, A/B twice: load 5.2 vs 3.1 s (the
# first touch of a huge page is slow here: 0.5-1.3 GB/s against 3 GB/s), decode 16.6 vs 15.7 tok/s. Kept for
# the decode speed; a background pre-fault thread was tried and slowed the overlapped bf16 load instead.
HUGEPAGES = True
ARENA_BLOCK = 256 << 20  # bytes per arena block: big enough that a tail left unused wastes little
_ARENAS: list[torch.Tensor] = []  # keeps the huge-page arenas alive
_free = {"block": None, "offset": 0}


def in_arena(t: torch.Tensor) -> bool:
    p = t.untyped_storage().data_ptr()
    return any(a.data_ptr() <= p < a.data_ptr() + a.numel() for a in _ARENAS)


def _new_block(size: int) -> torch.Tensor:
    import ctypes

    raw = torch.empty(size + HUGE_PAGE, dtype=torch.uint8)
    start = (-raw.data_ptr()) % HUGE_PAGE
    block = raw[start: start + size]
    if HUGEPAGES:
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.madvise(ctypes.c_void_p(block.data_ptr()), ctypes.c_size_t(size), 14)  # MADV_HUGEPAGE
        except (OSError, AttributeError):
            pass
    _ARENAS.append(raw)
    _free.update(block=block, offset=0)
    return block


def arena_empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor 64-byte aligned in memory backed by 2 MB pages (madvise(MADV_HUGEPAGE) on
    Linux, before the pages are touched; a no-op elsewhere). Why: a token streams ~1.1 GB of weights; with
    4 KB pages every 4 KB costs a TLB miss (measured on the 1.5B's output layer: 12.1 ms a token on ordinary
    pages, 10.8 ms on huge pages). Blocks of ARENA_BLOCK bytes are handed out in order and never freed."""
    n = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
    n64 = (n + 63) // 64 * 64
    block = _free["block"]
    if block is None or _free["offset"] + n64 > block.numel():
        block = _new_block(max(ARENA_BLOCK, (n64 + HUGE_PAGE - 1) // HUGE_PAGE * HUGE_PAGE))
    off = _free["offset"]
    _free["offset"] = off + n64
    return block[off: off + n].view(dtype).view(shape)


def cat_into_arena(parts: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat(parts) (dim 0) written once, straight into the arena."""
    out = arena_empty((sum(p.shape[0] for p in parts), *parts[0].shape[1:]), parts[0].dtype)
    return torch.cat(parts, out=out)
