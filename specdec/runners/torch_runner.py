"""The `torch` runner: a decoder-only HF model with our own static KV cache, explicit positions and masks.

Why our own attention/cache instead of HF's `forward`: verification needs (a) writing K+1 tokens at known
cache slots, (b) rolling the cache back after a rejection without recomputing, (c) tree attention masks with
per-node positions, and (d) a small fixed set of input shapes so `torch.compile` (inductor freezing) can
specialise the decode and verify steps. The model's own HF modules (projections, norms, MLP, rotary
embedding) are reused, so weights are shared and logits match HF's (tested).

Supported: the Llama-style family (llama, qwen2, qwen3, mistral without sliding window, smollm ...).

Cache layout: one k and one v tensor per layer, each (B, Hkv, S, D); slot s holds the token at sequence index s
(for committed tokens). Separate tensors, not one (L, ...) tensor: writing into a slice of a single compiled-graph
input makes inductor copy the whole cache for every layer (measured: ~30 ms of a 113 ms step of the 1.5B).
The runner never advances on its own: `forward` writes new tokens at slots [length, length+T) and
`commit(n, keep)` decides what stays.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from specdec.errors import InputError, ModelLoadError
from specdec.weights import layer_plan

SUPPORTED = {"llama", "qwen2", "qwen3", "mistral", "smollm3"}
BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64, 96, 128)  # compiled query lengths; inputs padded up
REUSE_SLACK = 4  # pad up to an already-compiled length when it wastes at most this many rows (a compile costs ~1 min)
# Inductor freezing folds a prepacked copy of the weights into every compiled shape (~2x the bf16 weights each
# for the 1.5B), so the number of compiled shapes per runner is capped: past the cap a pass is padded to the
# smallest compiled length that fits, or runs eagerly. (A K = 1..8 sweep in one process ran out of 24 GB.)
MAX_COMPILED_SHAPES = 4
UNNAMED = "<unnamed>"  # a model built in memory (tests): its measured costs are not cached on disk


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


ROW_ATTENTION_MAX_ROWS = 32  # passes up to this many rows attend row by row (see _Core.forward)
# prefill chunks of at least this many rows multiply through bf16 AMX tiles where the CPU has them (weights/quant.py
# prefill_linear); measured crossover, a whole prefill of the 1.5B (docs/runners.md): 42 rows 0.94x, 48 rows
# 1.02x, 64 rows 1.09x, 100 rows 1.46x, 300 rows 1.73x the int8 path's speed
BF16_PREFILL_MIN_ROWS = 48


class _Core(nn.Module):
    """The compiled step: tokens (B,T), positions (B,T), slots (T,), mask (B,1,T,S), k/v caches (L tensors of
    (B,Hkv,S,D), written in place at `slots`) -> logits (B,T,V), hidden (B,T,H)."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        cfg = hf_model.config
        self.model = hf_model.model
        self.lm_head = hf_model.get_output_embeddings()
        self.n_heads = cfg.num_attention_heads
        self.n_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        from specdec.weights.quant import QLinear

        # a prompt prefill (set by TorchRunner.prefill): only the cache is kept, so no output layer; and on the
        # quantized kernel with AMX-BF16, chunks of BF16_PREFILL_MIN_ROWS+ rows take the bf16 prefill path
        self.prefilling = False
        from specdec.weights import kernels

        # the build of specdec's kernel library the linear layers run on ("vnni": AVX-512, "avx2"), whose norms,
        # rope and row-by-row attention the loop below calls too; None: another kernel, the loop is torch's
        self.kernel = next((m.kernel for m in hf_model.modules() if isinstance(m, QLinear) and
                            kernels.on_kernel(m.kernel)), None)
        self.fast_norm = self.kernel is not None and type(self.model.norm).__name__.endswith("RMSNorm") and \
            cfg.hidden_size % 16 == 0
        self.plan = layer_plan.build(self)  # None: the Python loop below runs the layers
        self.bf16_prefill = self.fast_norm and self.kernel == "vnni" and kernels.bf16_prefill_in_effect() and \
            kernels.load().bf16_prefill_available()

    def _norm(self, mod: nn.Module, x: torch.Tensor, res: torch.Tensor | None = None):
        """RMSNorm of x (+ res first, returning (x + res, norm)). A quantized model on specdec's kernel computes
        in float32 and uses the kernel library's fused norm (one call instead of HF's six tensor ops, ~3.5 ms a
        token of dispatch on the 1.5B's 57 norms); any other model its own module, so rounding stays HF's."""
        compiling = torch.compiler.is_compiling()  # the custom ops under torch.compile (AVX-512 build), else calls
        if self.fast_norm and hasattr(mod, "variance_epsilon") and not (compiling and self.kernel != "vnni"):
            from specdec.weights import kernels

            ext = kernels.load_for(self.kernel)
            if res is None:
                return (kernels.RMS_NORM if compiling else ext.rms_norm)(x, mod.weight, mod.variance_epsilon)
            s, y = (kernels.ADD_RMS_NORM if compiling else ext.add_rms_norm)(x, res, mod.weight, mod.variance_epsilon)
            return s, y
        if res is None:
            return mod(x)
        x = x + res
        return x, mod(x)

    def forward(self, tokens, positions, slots, mask, k_cache, v_cache):
        B, T = tokens.shape
        x = self.model.embed_tokens(tokens).to(self.model.norm.weight.dtype)  # (B, T, H) in the compute dtype
        cos, sin = self.model.rotary_emb(x, positions)  # (B, T, D) each
        # a quantized model on specdec's kernel, eager: rope + cache write in the kernel library
        glue = self.fast_norm and not torch.compiler.is_compiling() and B == 1 and not hasattr(
            self.model.layers[0].self_attn, "q_norm")
        # attention: decode and verify passes (T <= ROW_ATTENTION_MAX_ROWS) through the kernel library's
        # row-by-row loop, prefill chunks through torch's flash attention. Row by row, a row's numbers do not
        # depend on the other rows of the pass, so a verify pass gives the same logits as plain decoding and
        # greedy speculation is bit-identical to plain (dev18 bench: 18/18 prompts identical, 12/18 with
        # flash attention, whose blocking depends on the pass length). Measured in-model side by side (6
        # prompts, 128 tokens): plain 11.81 vs 10.90 tok/s, draft-model confidence:8 12.82 vs 12.23.
        if glue:
            from specdec.weights import kernels

            ext = kernels.load_for(self.kernel)
        cos4, sin4 = cos[:, None], sin[:, None]  # (B, 1, T, D)
        G = self.n_heads // self.n_kv
        row_attn = glue and T <= ROW_ATTENTION_MAX_ROWS
        if row_attn and self.plan is not None:  # every layer in one kernel-library call (weights/layer_plan.py)
            x = layer_plan.run(self.plan, ext, x, cos, sin, slots, mask[0, 0], k_cache, v_cache, self.n_heads,
                               self.n_kv)  # (1, T, H)
            return (None, x) if self.prefilling else (self.lm_head(x), x)
        mask = mask.repeat(1, 1, G, 1)  # (B, 1, G*T, S): rows ordered (group, token) like the query view below
        # a prefill chunk of BF16_PREFILL_MIN_ROWS+ rows: the linears through bf16 AMX tiles (quant.prefill_linear;
        # the same for plain and speculative runs, which prefill the same prompt, so greedy identity holds)
        if self.prefilling and self.bf16_prefill and T >= BF16_PREFILL_MIN_ROWS:
            from specdec.weights.quant import prefill_linear as lin
        else:
            lin = nn.Module.__call__
        res = None  # the last MLP output, added to the residual stream together with the next norm
        for i, layer in enumerate(self.model.layers):
            attn = layer.self_attn
            if res is None:
                h = self._norm(layer.input_layernorm, x)
            else:
                x, h = self._norm(layer.input_layernorm, x, res)
            fused = getattr(attn, "qkv_proj", None)  # quantized models: one kernel call (weights/quant.py)
            if fused is not None:
                q, k, v = lin(fused, h).split(fused.split_sizes, dim=-1)
            else:
                q, k, v = lin(attn.q_proj, h), lin(attn.k_proj, h), lin(attn.v_proj, h)
            if glue:
                qr = ext.rope_write(q, k, v, cos, sin, k_cache[i], v_cache[i], slots, self.n_heads, self.n_kv)
                if row_attn:
                    o = ext.attention(qr, k_cache[i], v_cache[i], mask[0, 0, :T], attn.scaling)  # (B, T, Hq*D)
                else:
                    qg = qr.reshape(B, self.n_kv, G * T, self.head_dim)  # (B, Hkv, G*T, D)
                    o = F.scaled_dot_product_attention(qg, k_cache[i], v_cache[i], attn_mask=mask, scale=attn.scaling)
                    o = o.view(B, self.n_heads, T, self.head_dim).transpose(1, 2).reshape(B, T, -1)  # (B, T, Hq*D)
            else:
                q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, Hq, T, D)
                k = k.view(B, T, self.n_kv, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
                v = v.view(B, T, self.n_kv, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
                if hasattr(attn, "q_norm"):  # qwen3
                    q, k = attn.q_norm(q), attn.k_norm(k)
                q = q * cos4 + _rotate_half(q) * sin4
                k = k * cos4 + _rotate_half(k) * sin4
                k_cache[i].index_copy_(2, slots, k)  # (B, Hkv, S, D), in place
                v_cache[i].index_copy_(2, slots, v)
                # grouped-query attention without copying K/V: the G query heads of a KV head become G*T rows
                qg = q.reshape(B, self.n_kv, G * T, self.head_dim)  # (B, Hkv, G*T, D)
                o = F.scaled_dot_product_attention(qg, k_cache[i], v_cache[i], attn_mask=mask, scale=attn.scaling)
                o = o.view(B, self.n_heads, T, self.head_dim).transpose(1, 2).reshape(B, T, -1)  # (B, T, Hq*D)
            x, h = self._norm(layer.post_attention_layernorm, x, lin(attn.o_proj, o))
            gate_up = getattr(layer.mlp, "gate_up_proj", None)
            if gate_up is not None:
                g, u = lin(gate_up, h).split(gate_up.split_sizes, dim=-1)
                res = lin(layer.mlp.down_proj, layer.mlp.act_fn(g) * u)
            else:
                res = layer.mlp(h)
        _, x = self._norm(self.model.norm, x, res)  # (B, T, H)
        if self.prefilling:  # a prefill needs the cache, not the logits (the output layer is ~15% of its work)
            return None, x
        return self.lm_head(x), x


class TorchRunner:
    """One model, one static KV cache (the `Runner` protocol, specdec.runners.base). Batch size 1 today;
    every tensor keeps its batch dimension. Weights may be bf16/float32 `nn.Linear`s or the quantized
    modules of `specdec.weights.quant` (int8 / int4): the runner only calls the model's modules."""

    name = "torch"

    def __init__(
        self, hf_model: nn.Module, max_context: int = 2048, compile: bool = False, query_len: int | None = None
    ) -> None:
        cfg = hf_model.config
        if cfg.model_type not in SUPPORTED:
            raise ModelLoadError(
                f"model type {cfg.model_type!r} is not supported by the engine yet; supported: {', '.join(sorted(SUPPORTED))}"
            )
        if getattr(cfg, "use_sliding_window", False) and getattr(cfg, "sliding_window", None):
            if cfg.sliding_window < max_context:
                raise ModelLoadError("sliding-window attention is not supported; lower --max-context below the window")
        max_pos = getattr(cfg, "max_position_embeddings", None)
        self.max_context = min(max_context, max_pos) if max_pos else max_context
        self.hf_model = hf_model.eval()
        self.config = cfg
        self.core = _Core(hf_model).eval()
        # the compute dtype is the final norm's: a quantized model keeps its embedding table in bf16 and computes
        # in float32 (specdec.zoo.load_causal_lm)
        norm = hf_model.model.norm.weight
        self.dtype, self.device = norm.dtype, norm.device
        L = cfg.num_hidden_layers
        shape = (L, 1, self.core.n_kv, self.max_context + max(BUCKETS), self.core.head_dim)  # room for padding
        self.k_layers = [torch.zeros(shape[1:], dtype=self.dtype, device=self.device) for _ in range(L)]
        self.v_layers = [torch.zeros(shape[1:], dtype=self.dtype, device=self.device) for _ in range(L)]
        self.length = 0  # committed slots
        self._prefilling = False
        self.compiled = compile
        self.vocab_ids: torch.Tensor | None = None  # set by restrict_vocab: the token id of each logits row
        self.max_pass = query_len or max(BUCKETS)
        gen = getattr(hf_model, "generation_config", None)
        eos = getattr(gen, "eos_token_id", None)
        eos = getattr(cfg, "eos_token_id", None) if eos is None else eos
        self.eos_token_ids = tuple(int(e) for e in ([eos] if isinstance(eos, int) else (eos or [])))
        self._step = self.core
        self._compiled_step = None
        self.compile_seconds = 0.0
        self._seen_shapes: set[int] = set()
        # exact mode: every decode/verify pass has this one query length and attends over the whole cache, so
        # a token's logits do not depend on how many tokens shared its pass (see `forward`)
        if query_len is not None and not 1 <= query_len <= max(BUCKETS):
            raise InputError(f"query_len must be in [1, {max(BUCKETS)}], got {query_len}")
        self.query_len = query_len
        if compile:
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # constant-folded, prepacked weights: the CPU win (see docs)
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self._compiled_step = torch.compile(self.core, dynamic=False)
        if query_len is not None and query_len > 1:
            bad = self.exact_mismatches()
            if bad:
                raise InputError(
                    f"exact mode with {query_len} rows is not bit-exact for this model on this CPU: rows {bad} of a "
                    f"{query_len}-row pass round differently from the same tokens run one per pass (a kernel splits "
                    f"the rows into blocks, e.g. attention's {self.core.n_heads // self.core.n_kv}x{query_len} query "
                    f"rows); choose another --exact-len (8 is a safe choice for Qwen2.5 0.5B/1.5B)")

    def exact_mismatches(self, prompt_len: int = 8) -> list[int]:
        """Exact mode's self-check with the kernels this runner really uses (compiled or eager): run
        `query_len` tokens in one pass and one per pass after the same prompt; returns the rows whose logits
        differ (none when the mode is exact). Cost: query_len + 2 passes; the cache is left empty."""
        N = self.query_len
        ids = (torch.arange(N + prompt_len) * 7919 + 11) % self.vocab_size  # (N+p,) arbitrary tokens
        self.reset()
        self.prefill(ids[None, :prompt_len])
        together, _ = self.forward(ids[None, prompt_len:])  # (1, N, V)
        self.rollback(prompt_len)
        bad = []
        for t in range(N):
            alone, _ = self.forward(ids[None, prompt_len + t : prompt_len + t + 1])  # (1, 1, V)
            if not torch.equal(alone[0, 0], together[0, t]):
                bad.append(t)
            self.commit(1)
        self.reset()
        return bad

    @property
    def vocab_size(self) -> int:
        return self.core.lm_head.out_features

    def restrict_vocab(self, ids: list[int]) -> None:
        """Compute logits only for token `ids` (a draft model's output layer; see the draft-model drafter's
        vocab= option): row i of the logits is token `vocab_ids[i]`. Padded to a multiple of 16 rows (the
        int kernels' block) with the following ids."""
        from specdec.weights import quant

        head = self.core.lm_head
        if isinstance(head, quant.QLinear) and head.kernel == "aten":  # its codes are gone into aten's tiled layout
            raise InputError("a smaller output layer needs specdec's int kernel or unquantized weights; this "
                             "runner's output layer runs on PyTorch's aten int kernel (pass vocab=0)")
        n_all = head.out_features
        kept = {int(i) for i in ids if 0 <= int(i) < n_all}
        pad = (-len(kept)) % 16
        extra = [i for i in range(n_all) if i not in kept][:pad] if pad else []  # the set built once, not per id
        idx = torch.tensor(sorted([*kept, *extra]), device=self.device)
        if isinstance(head, quant.QLinear):
            new = quant.QLinear(quant.pack(head.qweight_().unpack().rows(idx)), None, head.kernel)
        else:
            new = nn.Linear(head.in_features, len(idx), bias=False, dtype=self.dtype)
            new.weight.data = head.weight.data[idx].clone()
        self.core.lm_head = new
        self.vocab_ids = idx

    @property
    def compute_dtype(self) -> str:
        """The activations' dtype (a quantized model's too): bfloat16 / float32 / float16."""
        return str(self.dtype).removeprefix("torch.")

    @property
    def weights(self) -> str:
        """bf16 / float32 / float16, or int4 / int8 when the linear layers are quantized modules."""
        from specdec.weights.quant import QLinear

        bits = {m.bits for m in self.hf_model.modules() if isinstance(m, QLinear)}
        if bits:
            return "int4" if 4 in bits else "int8"
        return str(self.dtype).removeprefix("torch.").replace("bfloat16", "bf16")

    def fingerprint(self) -> str:
        from specdec.weights import kernels

        cfg = self.config
        return (f"torch|{getattr(cfg, '_name_or_path', '') or UNNAMED}|{cfg.model_type}|{cfg.num_hidden_layers}x"
                f"{cfg.hidden_size}|{self.weights}|compile={self.compiled}|exact={self.query_len}|"
                f"threads={torch.get_num_threads()}|torch={torch.__version__}"
                + (f"|vocab={len(self.vocab_ids)}" if self.vocab_ids is not None else "")  # a smaller output layer
                + (f"|kernel={kernels.signature()}" if self._on_kernel() else ""))

    def _on_kernel(self) -> bool:
        """Whether the linear layers run on specdec's int4/int8 kernel (whose path and version set the speed)."""
        return self.core.kernel is not None

    def reset(self) -> None:
        self.length = 0

    @property
    def k_cache(self) -> torch.Tensor:
        """All layers' keys stacked (L, B, Hkv, S, D): a copy, for inspection."""
        return torch.stack(self.k_layers)

    @property
    def v_cache(self) -> torch.Tensor:
        return torch.stack(self.v_layers)

    def space_left(self) -> int:
        return self.max_context - self.length

    @torch.no_grad()
    def forward(
        self, tokens: torch.Tensor, tree_mask: torch.Tensor | None = None, depths: torch.Tensor | None = None,
        need_hidden: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run `tokens` (B, T) after the committed cache, writing their KV at slots [length, length+T).

        Chain (default): token t sits at position length+t and sees the cache and tokens 0..t.
        Tree: `tree_mask` (T, T) bool says which of the new tokens each new token sees (itself and its
        ancestors); `depths` (T,) gives positions length+depth. Returns logits (B, T, V) float32 and
        hidden states (B, T, H) (always: they are free here). Nothing is committed.
        """
        B, T = tokens.shape
        if self.length + T > self.max_context:
            raise InputError(
                f"context overflow: {self.length} tokens in the cache + {T} new > max context {self.max_context}"
            )
        use_compiled = self._compiled_step is not None and T <= max(BUCKETS)
        exact = self.query_len is not None and not self._prefilling
        if exact and T > self.query_len:
            raise InputError(f"{T} tokens in one pass exceed the exact mode's query length {self.query_len}")
        P = self.query_len if exact else self._bucket(T) if use_compiled else T  # padded query length
        if P is None:  # the compiled-shape cap is reached and no compiled length fits: run this pass eagerly
            use_compiled, P = False, T
        start = self.length
        # compiled or exact: one fixed cache length per shape; eager: attend over the used slots only
        full = use_compiled or exact
        S = self.k_layers[0].shape[2] if full else start + P
        kc, vc = (self.k_layers, self.v_layers) if full else ([k[:, :, :S] for k in self.k_layers],
                                                             [v[:, :, :S] for v in self.v_layers])
        dev = self.device  # every tensor of the pass is made where the model runs (the loop's ids stay on the CPU)
        rel = depths.to(dev) if depths is not None else torch.arange(T, device=dev)  # (T,)
        pos = torch.full((P,), 0, dtype=torch.long, device=dev)
        pos[:T] = start + rel
        pos[T:] = start + T + torch.arange(P - T, device=dev)  # padding rows: harmless positions past the real tokens
        slots = start + torch.arange(P, device=dev)  # (P,)
        mask = torch.zeros(P, S, dtype=torch.bool, device=dev)  # (P, S) True = may attend
        mask[:, :start] = True
        new = tree_mask.to(dev) if tree_mask is not None else torch.ones(T, T, dtype=torch.bool, device=dev).tril()
        mask[:T, start : start + T] = new
        mask[T:, start : start + P] = torch.ones(P - T, P, dtype=torch.bool, device=dev).tril(T)  # padding sees itself
        tok = torch.zeros(B, P, dtype=torch.long, device=dev)
        tok[:, :T] = tokens.to(dev)
        step = self._step
        if use_compiled:
            step = self._compiled_step
            if P not in self._seen_shapes:
                t0 = time.perf_counter()
                step(tok, pos[None].expand(B, P), slots, mask[None, None].expand(B, 1, P, S), kc, vc)
                self.compile_seconds += time.perf_counter() - t0
                self._seen_shapes.add(P)
        logits, hidden = step(tok, pos[None].expand(B, P), slots, mask[None, None].expand(B, 1, P, S), kc, vc)
        return (None if logits is None else logits[:, :T].float()), hidden[:, :T]

    def _bucket(self, T: int) -> int | None:
        """The compiled query length for T tokens: a compiled one with little waste, else a new bucket while
        under MAX_COMPILED_SHAPES, else the smallest compiled one that fits, else None (run eagerly)."""
        seen = sorted(self._seen_shapes)
        ready = [b for b in seen if T <= b <= T + REUSE_SLACK]
        if ready:
            return ready[0]
        if len(seen) < MAX_COMPILED_SHAPES:
            return next(b for b in BUCKETS if b >= T)
        return next((b for b in seen if b >= T), None)

    def prefill(self, tokens: torch.Tensor, chunk: int = 512) -> None:
        """Run and commit a prompt (B, T) in chunks (no logits: only the cache is kept)."""
        self.core.prefilling = True
        try:
            for s in range(0, tokens.shape[1], chunk):
                part = tokens[:, s : s + chunk]
                self.forward_eager(part)
                self.commit(part.shape[1])
        finally:
            self.core.prefilling = False

    @torch.no_grad()
    def forward_eager(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Like `forward` for a chain, never compiled (prompt prefill: many shapes, compute-bound anyway)."""
        compiled, self._compiled_step = self._compiled_step, None
        self._prefilling = True
        try:
            return self.forward(tokens)
        finally:
            self._compiled_step = compiled
            self._prefilling = False

    def commit(self, n: int, keep: list[int] | None = None) -> None:
        """Keep n of the tokens just run. `keep` (tree): their offsets among the new tokens, in order;
        their KV is moved to the contiguous slots [length, length+n). None keeps the first n (a chain)."""
        if keep is not None and keep != list(range(n)):
            src = self.length + torch.tensor(keep, device=self.device)  # (n,)
            dst = self.length + torch.arange(n, device=self.device)
            for k, v in zip(self.k_layers, self.v_layers):
                k[:, :, dst] = k[:, :, src]
                v[:, :, dst] = v[:, :, src]
        self.length += n

    def rollback(self, length: int) -> None:
        """Forget everything after `length` committed tokens (the slots are simply overwritten later)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot roll back to {length} from {self.length}")
        self.length = length
