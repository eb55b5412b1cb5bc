"""One interface for every backend an evaluation scores with, as lm-eval's `LM`: `loglikelihood` (MMLU) and
`generate_until` (GSM8K), on token ids the task built once with the model's tokenizer.

    EngineLM   this engine: a loaded SpecDecoder (any runner), any drafter / policy (spec), greedy
    VLLMLM     vLLM in its own venv (specdec.backends.vllm_client), its own speculative_config

Both answer request by request, in any order, as results come (`Run.execute` writes each line as it
arrives, so a run stays resumable). The task modules build the requests (`mmlu.loglik_request`,
`gsm8k.gen_request`) and score the answers (`mmlu.loglik_record`, `gsm8k.gen_record`): one record shape,
whatever the backend.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import torch

from specdec.drafters.base import DraftTree


@dataclass(frozen=True)
class LoglikRequest:
    """log p(continuation | context) for each continuation (token ids; lm-eval's `_encode_pair` split)."""

    id: str
    context: list[int]
    continuations: list[list[int]]


@dataclass(frozen=True)
class GenRequest:
    """Greedy generation after `prompt_ids`, at most `max_new_tokens`, cut at the first of `stop`."""

    id: str
    prompt_ids: list[int]
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass
class Generation:
    """A generation: `text` cut at the stop strings, the ids generated, speed stats (GenerationStats
    fields + decode_s), and with compare-plain the same prompt decoded without speculation."""

    text: str
    token_ids: list[int]
    speed: dict
    plain: "Generation | None" = None
    info: dict = field(default_factory=dict)


@runtime_checkable
class EvalLM(Protocol):
    tokenizer: Any
    info: dict  # what the summary reports about the backend (runner, weights, startup_s)

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[tuple[str, list[float]]]: ...

    def generate_until(self, requests: Sequence[GenRequest]) -> Iterator[tuple[str, Generation]]: ...


def encode_pair(tokenizer, ctx: str, cont: str) -> tuple[list[int], list[int]]:
    """lm-eval's `_encode_pair`: trailing spaces of the context move to the continuation; the continuation
    tokens are enc(context + continuation) after len(enc(context))."""
    n = len(ctx) - len(ctx.rstrip())
    if n:
        ctx, cont = ctx[:-n], ctx[-n:] + cont
    whole = tokenizer(ctx + cont)["input_ids"]
    ctx_ids = tokenizer(ctx)["input_ids"]
    return list(ctx_ids), list(whole[len(ctx_ids):])


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """lm-eval's generate_until post-processing: the text before the first stop string."""
    for s in stops:
        if s:
            text = text.split(s)[0]
    return text


# ------------------------------------------------------------------------------------------ this engine
class LoglikScorer:
    """log p(continuation | context) for several continuations at once, on an engine `TorchRunner`."""

    def __init__(self, runner, tokenizer) -> None:
        self.runner = runner
        self.tokenizer = tokenizer
        self._cached: list[int] = []  # token ids whose KV sits committed in the runner's cache
        self.truncated = 0

    def _prefill(self, ids: list[int]) -> None:
        """Make the runner's committed cache hold exactly `ids`, reusing the longest cached prefix."""
        r = self.runner
        if r.length != len(self._cached):  # someone else used the runner: start over
            self._cached = []
            r.reset()
        same = 0
        for a, b in zip(self._cached, ids):
            if a != b:
                break
            same += 1
        r.rollback(same)
        self._cached = self._cached[:same]
        if len(ids) > same:
            r.prefill(torch.tensor([ids[same:]]))
            self._cached = list(ids)

    def score_ids(self, ctx: list[int], conts: list[list[int]]) -> list[tuple[float, bool]]:
        """[(sum log p, is greedy)] of each continuation after `ctx`: one forward for all of them."""
        if not ctx:
            raise ValueError("empty context")
        if any(not c for c in conts):
            raise ValueError("empty continuation")
        room = self.runner.max_context - 1 - sum(len(c) for c in conts)
        if len(ctx) > room:  # lm-eval left-truncates too; counted in the summary
            ctx = ctx[len(ctx) - room:]
            self.truncated += 1
        self._prefill(ctx[:-1])
        # the tree: the root = the last context token; then each continuation as a branch below it
        toks = [ctx[-1]]
        parents: list[int] = []  # DraftTree parents (node i = toks[i + 1]; -1 = the root)
        parent_nodes: list[list[int]] = []  # per continuation, its rows in the pass
        for c in conts:
            nodes = []
            for j, t in enumerate(c):
                parents.append(len(toks) - 2 if j else -1)
                nodes.append(len(toks))
                toks.append(t)
            parent_nodes.append(nodes)
        tree = DraftTree(parents)
        logits, _ = self.runner.forward(torch.tensor([toks]), tree_mask=tree.attention_mask(), depths=tree.positions())
        logp = torch.log_softmax(logits[0].float(), dim=-1)  # (T, V)
        out = []
        for c, nodes in zip(conts, parent_nodes):
            prev = [0] + nodes[:-1]  # the node whose output predicts each continuation token
            lp = logp[prev]  # (len(c), V)
            tgt = torch.tensor(c)
            ll = float(lp.gather(1, tgt[:, None]).sum())
            greedy = bool((lp.argmax(-1) == tgt).all())
            out.append((ll, greedy))
        return out

    def score(self, ctx: str, conts: list[str]) -> list[tuple[float, bool]]:
        pairs = [encode_pair(self.tokenizer, ctx, c) for c in conts]
        ctx_ids = pairs[0][0]
        return self.score_ids(ctx_ids, [p[1] for p in pairs])



class EngineLM:
    """This engine: log-likelihoods on the target runner (all continuations of a question in one tree pass,
    the shared prompt head's KV kept between questions), generation through `decoder.generate_ids` with
    `spec` (and, with `compare_plain`, the same prompt again without speculation)."""

    def __init__(self, decoder, spec=None, compare_plain: bool = False, sampling=None) -> None:
        from specdec.config import SamplingConfig

        self.decoder = decoder
        self.sampling = sampling or SamplingConfig()  # greedy unless the run samples
        self.tokenizer = decoder.tokenizer
        self.spec = spec or decoder.spec
        self.compare_plain = compare_plain
        self.scorer = LoglikScorer(decoder.target, decoder.tokenizer)
        self.info = {"runner": {"name": decoder.target.name, "weights": decoder.target.weights}}

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[tuple[str, list[float]]]:
        for r in requests:
            yield r.id, [ll for ll, _ in self.scorer.score_ids(r.context, r.continuations)]

    def _generate(self, r: GenRequest, spec) -> Generation:
        import torch

        from specdec.config import StopConfig
        from specdec.stats import GenerationStats

        stats = GenerationStats()
        stop = StopConfig(max_new_tokens=r.max_new_tokens, stop_strings=tuple(r.stop))
        t0 = time.perf_counter()
        out = self.decoder.generate_ids(torch.tensor([r.prompt_ids]), sampling=self.sampling, stop=stop,
                                        spec=spec, stats=stats)
        wall = time.perf_counter() - t0
        st = stats.to_dict()
        speed = {k: st[k] for k in ("prompt_tokens", "new_tokens", "rounds", "target_calls", "draft_calls",
                                    "drafted", "accepted", "prefill_s", "draft_s", "verify_s", "total_s",
                                    "compile_s", "stop_reason")} | {"decode_s": stats.decode_s}
        text = cut_at_stop(self.tokenizer.decode(out, skip_special_tokens=True), r.stop)
        return Generation(text, out, speed, info={"wall_s": wall})

    def generate_until(self, requests: Sequence[GenRequest]) -> Iterator[tuple[str, Generation]]:
        from dataclasses import replace

        plain_spec = replace(self.spec, drafter=None)
        for r in requests:
            gen = self._generate(r, self.spec)
            if self.compare_plain:
                gen.plain = self._generate(r, plain_spec)
            yield r.id, gen


# ------------------------------------------------------------------------------------------ vLLM
class VLLMLM:
    """vLLM through its worker (one process per call, started in vLLM's venv): the same token ids as the
    engine gets. `speculative_config`: vLLM's own (specdec.backends.vllm_client.speculative_config)."""

    def __init__(self, model_dir: str, tokenizer, *, dtype: str, max_context: int, speculative_config=None,
                 venv=None, batch: int | None = None, log_path: str | Path | None = None, say=lambda m: None,
                 sampling=None, drafter_options: dict | None = None) -> None:
        from specdec.backends import vllm_client as V

        V.check_ready(V.VLLM_SUFFIX if (speculative_config or {}).get("method") == "suffix" else None, venv)
        self.model_dir, self.tokenizer, self.dtype = model_dir, tokenizer, dtype
        self.max_context, self.speculative_config = max_context, speculative_config
        self.venv, self.batch, self.log_path, self.say = venv, batch, log_path, say
        self.sampling, self.drafter_options = sampling, dict(drafter_options or {})  # sampling None: greedy
        self.info: dict = {}

    def _events(self, req) -> Iterator[dict]:
        from specdec.backends import vllm_client as V

        for ev in V.run_worker(req, self.venv, log_path=self.log_path):
            if ev["event"] == "ready":
                self.info["startup_s"] = ev["startup_s"]
                self.say(f"vLLM {ev.get('vllm')} ready in {ev['startup_s']:.1f}s")
            elif ev["event"] == "batch":  # batched: vLLM's speculative counters for the whole batch
                spec = self.info.setdefault("batch_spec", {})
                for key, value in (ev.get("spec") or {}).items():
                    spec[key] = spec.get(key, 0) + value
                self.info["batch_wall_s"] = self.info.get("batch_wall_s", 0.0) + ev["wall_s"]
            elif ev["event"] == "item":
                yield ev

    def loglikelihood(self, requests: Sequence[LoglikRequest]) -> Iterator[tuple[str, list[float]]]:
        from specdec.backends import vllm_client as V

        if not requests:
            return
        reqs = [{"id": r.id, "seqs": [r.context + c for c in r.continuations],
                 "n_cont": [len(c) for c in r.continuations]} for r in requests]
        longest = max(len(s) for r in reqs for s in r["seqs"])
        req = V.WorkerRequest(model=self.model_dir, dtype=self.dtype,
                              max_model_len=max(self.max_context, longest + 1), requests=reqs)
        for ev in self._events(req):
            yield ev["id"], ev["loglik"]

    def generate_until(self, requests: Sequence[GenRequest]) -> Iterator[tuple[str, Generation]]:
        from specdec.backends import vllm_client as V
        from specdec.errors import InputError

        if not requests:
            return
        too_long = [r.id for r in requests if len(r.prompt_ids) + r.max_new_tokens > self.max_context]
        if too_long:
            raise InputError(f"{len(too_long)} prompts + max_new_tokens exceed --max-context {self.max_context} "
                             f"(first: {too_long[0]}); raise --max-context")
        first = requests[0]
        req = V.WorkerRequest(model=self.model_dir, dtype=self.dtype, max_model_len=self.max_context,
                              speculative_config=self.speculative_config, max_tokens=first.max_new_tokens,
                              stop=list(first.stop), batch=bool(self.batch and self.batch > 1),
                              max_num_seqs=self.batch if self.batch and self.batch > 1 else None,
                              drafter_options=self.drafter_options,
                              requests=[{"id": r.id, "prompt_ids": r.prompt_ids} for r in requests],
                              **V.sampling_fields(self.sampling))
        for ev in self._events(req):
            text = cut_at_stop(self.tokenizer.decode(ev["token_ids"], skip_special_tokens=True), first.stop)
            yield ev["id"], Generation(text, ev["token_ids"], V.item_speed(ev))
