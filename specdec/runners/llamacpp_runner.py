"""The `llamacpp` runner: the GGUF file as it is, through llama.cpp's C API (llama-cpp-python's ctypes
bindings, low level: no sampling, no Python-side cache of its own).

    pass      one `llama_decode` of a batch with logits for every row (the verification batch)
    rollback  KV cells past the committed length are removed (`llama_memory_seq_rm`) before the next pass
    trees     one llama.cpp *sequence* per leaf: every draft node joins the sequences of the leaves below it,
              the committed prefix is shared into each of them (`llama_memory_seq_cp`, no copy of the data),
              and a node's attention sees exactly its leaf sequence up to its own position = the committed
              context plus its ancestors. Committing a path copies that leaf's cells into sequence 0 and
              drops the tree sequences (a unified KV cache, `kv_unified`).
    hidden    the final (post-norm) hidden states come from llama.cpp's embeddings output
              (`llama_set_embeddings`), switched on only while a pass asks for them

AMX: llama-cpp-python 0.3.36's llama.cpp segfaults in `ggml_backend_amx_mul_mat` for batches of more than
one token on CPUs with AMX (seen on this project's Sapphire Rapids machine; upstream
ggml-org/llama.cpp#20824), so on such a build and CPU the runner loads weights without llama.cpp's extra
buffer types (no AMX/repack), as `llama-server --no-repack` does. `repack=True` forces them on.

Exact mode (`query_len` set, `--exact-len N`): llama.cpp's repacked kernels (Q4_K in 8-row interleaved
blocks, the default where they are safe) take a gemv path for one row and a gemm path for several, so a
token's logits can depend on how many tokens share its pass: greedy speculation then differed from plain
decoding on 1 of 3 real prompts (96 tokens, draft model K=4). Without repacking, every row goes through the
same per-row dot products: 6 of 6 identical. So exact mode loads the weights unrepacked; it costs speed
(plain decoding of the 1.5B here: 11.5 tok/s unrepacked vs 15.2 repacked, AVX-512 build) and pads nothing.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import torch

from specdec import cpuinfo
from specdec.errors import InputError, ModelLoadError, RunnerError

MAX_PASS = 128  # rows in one decode/verify pass (the loop's cap, as for the torch runner)
TREE_SEQS = 32  # most leaves a tree draft may have (one llama.cpp sequence each, plus sequence 0)
_INIT = threading.Lock()
_BACKEND_READY = False
_LOG_CALLBACK = None  # keeps the ctypes callback alive


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def _lib():
    try:
        import llama_cpp
    except ImportError:
        raise ModelLoadError("the llamacpp runner needs llama-cpp-python: pip install 'specdec[llamacpp]' "
                             "(builds llama.cpp from source, about 4-15 minutes)") from None
    return llama_cpp


def _init_backend(L) -> None:
    """Once per process: llama.cpp's backend, and its log sent nowhere but errors to stderr."""
    global _BACKEND_READY, _LOG_CALLBACK
    with _INIT:
        if _BACKEND_READY:
            return

        def log(level, text, _user):  # GGML_LOG_LEVEL_ERROR = 4
            if level == 4 and os.environ.get("SPECDEC_LLAMACPP_LOG", "") != "0":
                import sys

                sys.stderr.write(text.decode("utf-8", "replace"))

        _LOG_CALLBACK = L.llama_log_callback(log)
        L.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
        L.llama_backend_init()
        _BACKEND_READY = True


def _cpu_has_amx() -> bool:
    return "amx_int8" in cpuinfo.flags()


def repack_safe(L) -> bool:
    """False where llama.cpp's AMX path crashes (a build with AMX on an AMX CPU)."""
    info = L.llama_print_system_info().decode("utf-8", "replace")
    return not ("AMX_INT8 = 1" in info and _cpu_has_amx())


class LlamaCppRunner:
    """One GGUF model, one llama.cpp context (the `Runner` protocol, specdec.runners.base)."""

    name = "llamacpp"

    def __init__(self, gguf_path: str | os.PathLike, max_context: int = 2048, threads: int | None = None,
                 query_len: int | None = None, repack: bool | None = None, eos_token_ids=None,
                 n_batch: int = 512, compile: bool = False) -> None:
        if query_len is not None and repack:
            raise InputError("exact mode (--exact-len) on the llamacpp runner loads the weights unrepacked; "
                             "it cannot be combined with repack=True")
        L = _lib()
        _init_backend(L)
        path = Path(gguf_path)
        if not path.is_file():
            raise ModelLoadError(f"no GGUF file at {path}")
        self._L = L
        self.path = path
        self.threads = int(threads or torch.get_num_threads())
        self.exact = query_len is not None  # batch-invariant kernels (no repack): see the module docstring
        self.repack = False if self.exact else (repack_safe(L) if repack is None else bool(repack))
        mp = L.llama_model_default_params()
        mp.use_extra_bufts = self.repack
        self._model = L.llama_model_load_from_file(str(path).encode(), mp)
        if not self._model:
            raise ModelLoadError(f"llama.cpp could not load {path} (not a GGUF model it supports, or corrupt)")
        n_train = L.llama_model_n_ctx_train(self._model)
        self.max_context = min(max_context, n_train) if n_train > 0 else max_context
        self.max_pass = MAX_PASS
        self.query_len = None
        self.compile_seconds = 0.0
        self.length = 0
        self.weights = "gguf"  # the GGUF's own quantized weights, as llama.cpp runs them
        self.compute_dtype = "gguf"  # llama.cpp picks its activations' types per operation
        self.vocab_ids: torch.Tensor | None = None  # every row: the model's whole vocabulary
        cp = L.llama_context_default_params()
        cp.n_ctx = self.max_context + MAX_PASS
        cp.n_batch = cp.n_ubatch = max(n_batch, MAX_PASS)
        cp.n_seq_max = TREE_SEQS + 1
        cp.kv_unified = True  # tree sequences share the committed prefix's cells
        cp.n_threads = cp.n_threads_batch = self.threads
        cp.embeddings = False
        cp.no_perf = True
        self._ctx = L.llama_init_from_model(self._model, cp)
        if not self._ctx:
            L.llama_model_free(self._model)
            raise ModelLoadError(f"llama.cpp could not create a context for {path} (out of memory?)")
        self._mem = L.llama_get_memory(self._ctx)
        self._vocab = L.llama_model_get_vocab(self._model)
        self.vocab_size = int(L.llama_vocab_n_tokens(self._vocab))
        self.hidden_size = int(L.llama_model_n_embd(self._model))
        self._batch_cap = cp.n_batch
        self._batch = L.llama_batch_init(self._batch_cap, 0, TREE_SEQS + 1)
        self._embeddings = False
        self._tree_seqs = 0  # sequences 1..n hold the last tree pass
        self._tree_leaf_of: list[int] = []
        eos = set(int(e) for e in (eos_token_ids or ()))
        for fn in (L.llama_vocab_eos, L.llama_vocab_eot):
            t = int(fn(self._vocab))
            if t >= 0:
                eos.add(t)
        self.eos_token_ids = tuple(sorted(eos))
        self._fp = None

    # ---- protocol
    def restrict_vocab(self, ids: list[int]) -> None:
        raise InputError("a smaller output layer (the draft-model drafter's vocab=N) needs the torch runner for the "
                         "draft; pass vocab=0 or draft_backend=torch")

    def fingerprint(self) -> str:
        if self._fp is None:
            st = self.path.stat()
            self._fp = (f"llamacpp|{self.path.name}|{st.st_size}|threads={self.threads}|repack={self.repack}|"
                        f"llama_cpp={getattr(self._L, '__version__', '?')}")
        return self._fp

    def reset(self) -> None:
        self._L.llama_memory_seq_rm(self._mem, -1, -1, -1)
        self._tree_seqs = 0
        self.length = 0

    def space_left(self) -> int:
        return self.max_context - self.length

    def rollback(self, length: int) -> None:
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot roll back to {length} from {self.length}")
        self.length = length

    def prefill(self, tokens: torch.Tensor) -> None:
        ids = tokens[0].tolist()
        if self.length + len(ids) > self.max_context:
            raise InputError(f"context overflow: {self.length} tokens in the cache + {len(ids)} new > max context "
                             f"{self.max_context}")
        self._clear_uncommitted()
        for s in range(0, len(ids), self._batch_cap):
            part = ids[s : s + self._batch_cap]
            self._fill(part, [self.length + i for i in range(len(part))], [[0]] * len(part), logits=False)
            self._decode()
            self.length += len(part)

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor, tree_mask: torch.Tensor | None = None,
                depths: torch.Tensor | None = None, need_hidden: bool = False):
        ids = tokens[0].tolist()
        T = len(ids)
        if T == 0:
            raise InputError("a pass needs at least one token")
        if self.length + T > self.max_context:
            raise InputError(f"context overflow: {self.length} tokens in the cache + {T} new > max context "
                             f"{self.max_context}")
        if T > self._batch_cap:
            raise InputError(f"{T} tokens in one pass exceed the llamacpp runner's batch ({self._batch_cap})")
        self._clear_uncommitted()
        L = self._L
        if tree_mask is None:
            self._fill(ids, [self.length + t for t in range(T)], [[0]] * T, logits=True)
        else:
            seqs = self._tree_sequences(tree_mask)
            for s in range(1, self._tree_seqs + 1):  # the committed prefix joins every leaf sequence
                L.llama_memory_seq_cp(self._mem, 0, s, 0, self.length)
            rel = depths.tolist() if depths is not None else list(range(T))
            self._fill(ids, [self.length + int(d) for d in rel], seqs, logits=True)
        if need_hidden != self._embeddings:
            L.llama_set_embeddings(self._ctx, need_hidden)
            self._embeddings = need_hidden
        self._decode()
        V = self.vocab_size
        logits = np.ctypeslib.as_array(L.llama_get_logits(self._ctx), shape=(T, V))
        out = torch.from_numpy(logits.copy())[None]  # (1, T, V) float32
        hidden = None
        if need_hidden:
            emb = np.ctypeslib.as_array(L.llama_get_embeddings(self._ctx), shape=(T, self.hidden_size))
            hidden = torch.from_numpy(emb.copy())[None]  # (1, T, H)
        return out, hidden

    def commit(self, n: int, keep: list[int] | None = None) -> None:
        L = self._L
        if self._tree_seqs and keep is None:
            keep = list(range(n))  # "the first n" of a tree pass: they must form a path from the root
        if self._tree_seqs and n > 0:
            last = keep[n - 1] if n <= len(keep) else keep[-1]
            leaf_seq = self._tree_leaf_of[last]  # a leaf sequence through the last kept node: holds the path
            L.llama_memory_seq_rm(self._mem, leaf_seq, self.length + n, -1)
            L.llama_memory_seq_rm(self._mem, 0, self.length, -1)
            L.llama_memory_seq_cp(self._mem, leaf_seq, 0, self.length, self.length + n)
        self._drop_tree()
        self.length += n

    # ---- internals
    def _tree_sequences(self, mask: torch.Tensor) -> list[list[int]]:
        """Sequence ids per node: leaf l gets sequence 1 + l's rank; a node belongs to every leaf sequence
        below it (mask[l, i]: leaf l sees node i)."""
        m = mask.bool()
        T = m.shape[0]
        has_child = (m & ~torch.eye(T, dtype=torch.bool)).any(0)  # (T,) some other node sees it
        leaves = [i for i in range(T) if not has_child[i]]
        if len(leaves) > TREE_SEQS:
            raise InputError(f"a tree draft with {len(leaves)} leaves exceeds the llamacpp runner's {TREE_SEQS} "
                             "sequences; draft a smaller tree")
        seq_of_leaf = {leaf: 1 + r for r, leaf in enumerate(leaves)}
        seqs: list[list[int]] = []
        self._tree_leaf_of = []
        for i in range(T):
            below = [seq_of_leaf[leaf] for leaf in leaves if m[leaf, i]]
            seqs.append(below)
            self._tree_leaf_of.append(below[0])
        self._tree_seqs = len(leaves)
        return seqs

    def _drop_tree(self) -> None:
        for s in range(1, self._tree_seqs + 1):
            self._L.llama_memory_seq_rm(self._mem, s, -1, -1)
        self._tree_seqs = 0

    def _clear_uncommitted(self) -> None:
        """Cells of the last pass that were not committed (and any tree sequences) go before the next one."""
        self._drop_tree()
        self._L.llama_memory_seq_rm(self._mem, -1, self.length, -1)

    def _fill(self, ids: list[int], pos: list[int], seqs: list[list[int]], logits: bool) -> None:
        b = self._batch
        b.n_tokens = len(ids)
        for i, (t, p, s) in enumerate(zip(ids, pos, seqs)):
            if not 0 <= t < self.vocab_size:
                raise InputError(f"token id {t} is outside the model's vocabulary ({self.vocab_size})")
            b.token[i] = t
            b.pos[i] = p
            b.n_seq_id[i] = len(s)
            for j, sid in enumerate(s):
                b.seq_id[i][j] = sid
            b.logits[i] = 1 if logits else 0
        if not logits:
            b.logits[len(ids) - 1] = 1  # llama.cpp wants at least one output row

    def _decode(self) -> None:
        rc = self._L.llama_decode(self._ctx, self._batch)
        if rc != 0:
            raise RunnerError(f"llama.cpp could not run a pass (llama_decode returned {rc}: "
                              f"{'no free KV cell' if rc == 1 else 'see its log above'})")

    def close(self) -> None:
        L = getattr(self, "_L", None)
        if L is None:
            return
        if getattr(self, "_batch", None) is not None:
            L.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_ctx", None):
            L.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            L.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def file_digest(path: Path, limit: int = 1 << 20) -> str:
    """A cheap identity for a GGUF: sha256 of its first MiB and its size."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(limit))
    return f"{h.hexdigest()[:16]}-{path.stat().st_size}"
