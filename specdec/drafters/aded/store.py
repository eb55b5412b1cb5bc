"""The tri-gram store: for each token pair (a, b), its most frequent successors c with weights.

Layout (CSR over sorted pair keys, no dense V x V x V):
    key(a, b) = a * (V + 1) + b        a == V is the *bigram* context of b (the optional backoff)
    keys     (P,)   int64   sorted pair keys
    offsets  (P+1,) int64   successors of keys[i] are entries offsets[i]:offsets[i+1]
    succ     (E,)   int32   successor token ids, by weight, descending
    weights  (E,)   float32 count(a, b, c) / count(a, b, *): the empirical P(c | a, b) of the top-k (sum <= 1)

Online adaptation lives in an overlay (`live`: pair key -> {successor: weight}) on top of the immutable
base arrays, so resetting a generation's adaptation is `reset()`, O(1). Saved as safetensors (flat
arrays + a JSON header with the tokenizer's name, vocabulary size and fingerprint); never pickle.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from specdec.errors import DataError, InputError, SpecDecError, TokenizerMismatchError

FORMAT = "specdec-aded-trigram"
VERSION = 1
_REDUCE_EVERY = 4_000_000  # codes buffered before a merge (bounds build memory)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A short hash of the vocabulary (token string -> id): equal iff the tokenizers split text alike."""
    items = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(items, ensure_ascii=False).encode()).hexdigest()[:16]


def tokenizer_vocab(tokenizer: Any) -> int:
    return len(tokenizer)


class TrigramStore:
    def __init__(self, vocab_size: int, keys: np.ndarray | None = None, offsets: np.ndarray | None = None,
                 succ: np.ndarray | None = None, weights: np.ndarray | None = None, meta: dict | None = None) -> None:
        if vocab_size < 1:
            raise InputError(f"vocab_size must be >= 1, got {vocab_size}")
        self.V = int(vocab_size)
        self.base = self.V + 1
        self.keys = keys if keys is not None else np.zeros(0, np.int64)  # (P,)
        self.offsets = offsets if offsets is not None else np.zeros(1, np.int64)  # (P+1,)
        self.succ = succ if succ is not None else np.zeros(0, np.int32)  # (E,)
        self.weights = weights if weights is not None else np.zeros(0, np.float32)  # (E,)
        self.meta: dict = dict(meta or {})
        self.meta.setdefault("vocab_size", self.V)
        self.live: dict[int, dict[int, float]] = {}  # online overlay
        self._memo: dict[int, tuple[list[int], list[float]]] = {}  # base lookups as Python lists
        self._live_sorted: dict[int, tuple[list[int], list[float]]] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def empty(cls, vocab_size: int, **meta) -> "TrigramStore":
        return cls(vocab_size, meta=meta)

    @classmethod
    def build(cls, streams: Iterable[Any], vocab_size: int, top_k: int = 12, bigrams: bool = True,
              min_count: int = 1, progress: bool = False, total: int | None = None,
              meta: dict | None = None) -> "TrigramStore":
        """Count the tri-grams (and bigrams, for the backoff) of token streams (1-D int arrays/lists) and
        keep the `top_k` successors of each pair. Streams are separate documents: no n-gram spans two."""
        if top_k < 1:
            raise InputError(f"top_k must be >= 1, got {top_k}")
        V, base = int(vocab_size), int(vocab_size) + 1
        codes_acc, counts_acc = np.zeros(0, np.int64), np.zeros(0, np.int64)
        buf: list[np.ndarray] = []
        nbuf, ntok, ndocs = 0, 0, 0

        def reduce() -> None:
            nonlocal codes_acc, counts_acc, buf, nbuf
            codes = np.concatenate([codes_acc, *buf])  # (n,)
            counts = np.concatenate([counts_acc, *[np.ones(len(b), np.int64) for b in buf]])  # (n,)
            codes_acc, inv = np.unique(codes, return_inverse=True)
            counts_acc = np.bincount(inv.ravel(), weights=counts).astype(np.int64)  # (u,)
            buf, nbuf = [], 0

        bar = _progress(progress, total)
        with bar:
            task = bar.add_task("counting tri-grams", total=total)
            for s in streams:
                s = np.asarray(s, dtype=np.int64).ravel()  # (T,)
                if len(s) and (s.min() < 0 or s.max() >= V):
                    raise InputError(f"token id out of range [0, {V}) in stream {ndocs}")
                if len(s) >= 3:
                    buf.append((s[:-2] * base + s[1:-1]) * V + s[2:])  # (T-2,) codes key*V + c
                if bigrams and len(s) >= 2:
                    buf.append((V * base + s[:-1]) * V + s[1:])  # (T-1,) bigram context a = V
                nbuf += max(len(s) - 2, 0) + (max(len(s) - 1, 0) if bigrams else 0)
                ntok += len(s)
                ndocs += 1
                if nbuf >= _REDUCE_EVERY:
                    reduce()
                bar.update(task, advance=1, description=f"counting tri-grams ({ntok:,} tokens)")
            reduce()
        codes, cnt = codes_acc, counts_acc  # (u,) sorted by (pair, successor)
        pair, c = codes // V, (codes % V).astype(np.int32)  # (u,) each
        n = len(codes)
        if n == 0:
            store = cls(V, meta=meta)
        else:
            starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])  # (P,) first entry of each pair
            sizes = np.diff(np.r_[starts, n])  # (P,)
            totals = np.add.reduceat(cnt, starts)  # (P,) count(a, b, *) over all successors
            grp = np.repeat(np.arange(len(starts)), sizes)  # (u,) pair index of each entry
            order = np.lexsort((-cnt, grp))  # (u,) by pair, then count descending
            rank = np.arange(n) - starts[grp[order]]  # (u,) rank within its pair
            kept = order[(rank < top_k) & (cnt[order] >= min_count)]  # (E,)
            per_pair = np.bincount(grp[kept], minlength=len(starts))  # (P,)
            nonempty = per_pair > 0
            keys = pair[starts][nonempty]  # (P',)
            offsets = np.r_[0, np.cumsum(per_pair[nonempty])].astype(np.int64)  # (P'+1,)
            weights = (cnt[kept] / totals[grp[kept]]).astype(np.float32)  # (E,)
            store = cls(V, keys.astype(np.int64), offsets, c[kept], weights, meta=meta)
        store.meta.update(top_k=top_k, bigrams=bigrams, min_count=min_count, corpus_tokens=ntok, corpus_docs=ndocs)
        return store

    # ------------------------------------------------------------------ lookups
    def key(self, a: int, b: int) -> int:
        return a * self.base + b

    def _base_lookup(self, key: int) -> tuple[list[int], list[float]]:
        hit = self._memo.get(key)
        if hit is None:
            i = int(np.searchsorted(self.keys, key))
            if i < len(self.keys) and self.keys[i] == key:
                lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
                hit = (self.succ[lo:hi].tolist(), self.weights[lo:hi].tolist())
            else:
                hit = ([], [])
            if len(self._memo) > 200_000:
                self._memo.clear()
            self._memo[key] = hit
        return hit

    def successors_key(self, key: int) -> tuple[list[int], list[float]]:
        """(successor ids, weights), by weight descending; empty lists if the pair is unknown."""
        if key in self.live:
            hit = self._live_sorted.get(key)
            if hit is None:
                items = sorted(self.live[key].items(), key=lambda kv: -kv[1])
                hit = ([k for k, _ in items], [w for _, w in items])
                self._live_sorted[key] = hit
            return hit
        return self._base_lookup(key)

    def successors(self, a: int | None, b: int, backoff: bool = False) -> tuple[list[int], list[float]]:
        """Successors of the pair (a, b); with `backoff`, those of b alone when the pair is unknown
        (a None: only the bigram context)."""
        if not 0 <= b < self.V:
            return [], []
        if a is not None and 0 <= a < self.V:
            hit = self.successors_key(a * self.base + b)
            if hit[0] or not backoff:
                return hit
        elif not backoff:
            return [], []
        return self.successors_key(self.V * self.base + b)

    # ------------------------------------------------------------------ online adaptation
    def update(self, window: list[int], increment: float = 0.04, cap: float = 3.0, top_k: int = 12,
               bigrams: bool = True) -> None:
        """Reinforce every tri-gram (a, b, c) of `window`: w(a, b -> c) += increment per occurrence, capped at
        `cap`. A new successor enters the pair's list; past `top_k` the weakest other successor is dropped."""
        V, base = self.V, self.base
        w = [t for t in window]
        for i in range(len(w) - 2):
            a, b, c = w[i], w[i + 1], w[i + 2]
            if a < V and b < V and c < V:
                self._bump(a * base + b, c, increment, cap, top_k)
        if bigrams:
            for i in range(len(w) - 1):
                b, c = w[i], w[i + 1]
                if b < V and c < V:
                    self._bump(V * base + b, c, increment, cap, top_k)

    def recycle(self, a: int | None, b: int, succ: list[int], probs: list[float], top_k: int = 12,
                bigrams: bool = True) -> None:
        """The target's own guesses after (a, b) (its likeliest tokens `succ`, probabilities `probs`) become the
        pair's weights for those successors: the latest prediction wins (Token Recycling, Luo et al. 2024), the
        pair's other successors stay; past `top_k` the weakest others are dropped. With `bigrams`, b's bigram
        context learns the same guesses."""
        V, base = self.V, self.base
        if not 0 <= b < V:
            return
        fresh = {c: p for c, p in zip(succ, probs) if 0 <= c < V}
        keys = ([a * base + b] if a is not None and 0 <= a < V else []) + ([V * base + b] if bigrams else [])
        for key in keys:
            d = self.live.get(key)
            if d is None:
                s, ws = self._base_lookup(key)
                d = self.live[key] = dict(zip(s, ws))
            d.update(fresh)
            weakest = sorted((c for c in d if c not in fresh), key=d.__getitem__)
            for c in weakest[: max(len(d) - top_k, 0)]:
                del d[c]
            self._live_sorted.pop(key, None)

    def _bump(self, key: int, c: int, increment: float, cap: float, top_k: int) -> None:
        d = self.live.get(key)
        if d is None:
            s, ws = self._base_lookup(key)
            d = self.live[key] = dict(zip(s, ws))
        d[c] = min(d.get(c, 0.0) + increment, cap)
        if len(d) > top_k:
            weakest = min((k for k in d if k != c), key=d.__getitem__)
            del d[weakest]
        self._live_sorted.pop(key, None)

    def fork(self) -> "TrigramStore":
        """A store sharing this one's base arrays with an empty overlay of its own: one request's adaptation
        beside others' (batched serving), without copying the base."""
        import copy

        other = copy.copy(self)
        other.live, other._live_sorted = {}, {}  # the base lookups memo (_memo) stays shared
        return other

    def reset(self) -> None:
        """Forget the online adaptation: back to the base store."""
        self.live.clear()
        self._live_sorted.clear()

    # ------------------------------------------------------------------ size, save, load
    @property
    def num_pairs(self) -> int:
        return len(self.keys)

    @property
    def num_entries(self) -> int:
        return len(self.succ)

    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.offsets.nbytes + self.succ.nbytes + self.weights.nbytes)

    def size_report(self) -> dict:
        bigram = int(np.count_nonzero(self.keys >= self.V * self.base))
        return {
            "vocab_size": self.V,
            "pairs": self.num_pairs - bigram,
            "bigram_contexts": bigram,
            "entries": self.num_entries,
            "mean_successors": self.num_entries / max(self.num_pairs, 1),
            "bytes": self.nbytes(),
            "live_pairs": len(self.live),
            "corpus_tokens": self.meta.get("corpus_tokens", 0),
        }

    def save(self, path: str | os.PathLike) -> dict:
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = dict(self.meta, format=FORMAT, version=VERSION, vocab_size=self.V, saved=time.strftime("%Y-%m-%d %H:%M:%S"))
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        save_file({"keys": self.keys, "offsets": self.offsets, "succ": self.succ, "weights": self.weights},
                  str(tmp), metadata={"aded": json.dumps(header)})
        os.replace(tmp, path)
        return dict(self.size_report(), file_bytes=path.stat().st_size, path=str(path))

    @staticmethod
    def read_meta(path: str | os.PathLike) -> dict:
        """A saved store's header (tokenizer, vocabulary, sources ...) without reading its arrays."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as f:
                return json.loads((f.metadata() or {}).get("aded", "{}"))
        except Exception as e:  # noqa: BLE001 - one actionable line
            raise DataError(f"{path} is not a readable ADED store ({type(e).__name__}: {e})") from None

    @classmethod
    def load(cls, path: str | os.PathLike, tokenizer: Any = None) -> "TrigramStore":
        """Load a saved store. With `tokenizer`, refuse a store built for a different vocabulary."""
        from safetensors import safe_open

        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(f"no ADED store at {path}; build one with `specdec aded build --from ... --out {path}`")
        try:
            with safe_open(str(path), framework="np") as f:
                header = json.loads((f.metadata() or {}).get("aded", "{}"))
                if header.get("format") != FORMAT:
                    raise DataError(f"{path} is not an ADED tri-gram store (format {header.get('format')!r})")
                if int(header.get("version", 0)) > VERSION:
                    raise DataError(f"{path} has store version {header['version']}; this specdec reads <= {VERSION}")
                if tokenizer is not None:
                    check_tokenizer(header, tokenizer, path)
                arrays = {k: f.get_tensor(k) for k in ("keys", "offsets", "succ", "weights")}
        except SpecDecError:
            raise
        except Exception as e:  # noqa: BLE001 - one actionable line
            raise DataError(f"{path} is not a readable ADED store ({type(e).__name__}: {e})") from None
        V = int(header["vocab_size"])
        if len(arrays["offsets"]) != len(arrays["keys"]) + 1 or len(arrays["succ"]) != len(arrays["weights"]):
            raise DataError(f"{path}: inconsistent array lengths; rebuild the store")
        return cls(V, arrays["keys"].astype(np.int64), arrays["offsets"].astype(np.int64),
                   arrays["succ"].astype(np.int32), arrays["weights"].astype(np.float32), meta=header)


def check_tokenizer(header: dict, tokenizer: Any, path: Any = "the store") -> None:
    want_fp = header.get("tokenizer_fingerprint")
    name = header.get("tokenizer", "?")
    have_v = tokenizer_vocab(tokenizer)
    mismatch = int(header.get("vocab_size", have_v)) != have_v
    if want_fp and not mismatch:
        mismatch = tokenizer_fingerprint(tokenizer) != want_fp
    if mismatch:
        have = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise TokenizerMismatchError(
            f"ADED store {path} was built for tokenizer {name!r} (vocab {header.get('vocab_size')}), but the target "
            f"uses {have!r} (vocab {have_v}); rebuild it: specdec aded build --from ... --tokenizer <target> --out ...")


def _progress(enabled: bool, total: int | None):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=not enabled)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not enabled)
