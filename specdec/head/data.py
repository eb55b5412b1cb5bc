"""Training data for the acceptance head (SpecDec++ section 4, as implemented here).

For every training prompt (never an evaluation prompt):

1. y = the target's response (greedy by default; produced with the engine's lossless draft-model
   speculation, which gives exactly the target's greedy tokens faster than plain decoding).
2. One target pass over prompt+y (teacher forcing) -> p_t, the target's distribution for response token t.
3. One draft pass over prompt+y -> q_t. The draft samples x_t ~ q_t (temperature `temperature`).
   Labels of position t:
      label          = min(1, p_t(x_t) / q_t(x_t))     (the paper's label: the acceptance probability
                                                          of the sampled draft token)
      label_expected = sum_x min(p_t(x), q_t(x))       (its expectation over x_t ~ q_t)
      label_greedy   = 1[argmax q_t == argmax p_t]     (acceptance under greedy decoding)
4. The mixed sequence m: m_t = y_t with probability `keep_prob` (0.15; "kept" positions, NOT labelled),
   else m_t = x_t. A second draft pass over prompt+m gives the features: the feature of position t is
   the draft's final (normed) hidden state after consuming prompt + m_<t, i.e. the hidden state that
   produces the draft's distribution for token t -- exactly `DraftStep.hidden` at drafting time, where
   the prefix is made of drafted tokens ("pre" alignment, the default). The same pass also gives the
   hidden state after consuming prompt + m_<=t ("post" alignment: the official SpecDec++ code's, where the
   head sees the drafted token itself; at drafting time that vector only exists one step later, so a
   post-aligned head lags one token). Kept positions are unlabelled in both alignments.

Everything per prompt is seeded by (seed, prompt index), so shards are reproducible and resumable.
Shards: `shard-NNNNN.safetensors` with features, features_post (N,H) bf16, label/label_expected/label_greedy (N,) f32,
mask (N,) uint8 (1 = labelled), prompt (N,) int32, position (N,) int32; `manifest.json` lists the config
and the finished shards. A rerun with the same config skips finished shards.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from specdec.config import SamplingConfig
from specdec.errors import DataError, InputError
from specdec.prompt import encode_prompt
from specdec.sampling import process_logits

from specdec.head.dataset import MANIFEST, load_manifest


# ------------------------------------------------------------------------------------------- labels
def acceptance_labels(p: torch.Tensor, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """p, q (N, V) target / draft distributions, x (N,) draft tokens -> min(1, p(x)/q(x)) (N,).
    q(x) == 0 (a token the draft could not have sampled) gives 1 when p(x) > 0, else 0."""
    px = p.gather(-1, x[:, None])[:, 0].float()
    qx = q.gather(-1, x[:, None])[:, 0].float()
    ratio = torch.where(qx > 0, px / qx.clamp_min(1e-30), (px > 0).float())
    return ratio.clamp(max=1.0)


def expected_acceptance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum_x min(p(x), q(x)) = 1 - TV(p, q) (N,): E_{x~q} min(1, p(x)/q(x))."""
    return torch.minimum(p.float(), q.float()).sum(-1).clamp(0.0, 1.0)


def keep_mask(n: int, keep_prob: float, generator: torch.Generator) -> torch.Tensor:
    """(n,) bool: True = keep the target's token there (not labelled)."""
    return torch.rand(n, generator=generator) < keep_prob


def mix_tokens(target_tokens: torch.Tensor, draft_tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return torch.where(keep, target_tokens, draft_tokens)


# ------------------------------------------------------------------------------------------- prompts
def read_prompts(path: str | os.PathLike) -> list[str]:
    """A .jsonl file of {"question"} (GSM8K), {"prompt"}, {"text"} or {"turns": [...]} rows, or a .txt
    file with one prompt per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prompt file {str(path)!r} not found")
    from specdec.jsonl import read_jsonl
    from specdec.validate import read_utf8

    if path.suffix == ".txt":
        return [line.strip() for line in read_utf8(path).splitlines() if line.strip()]
    out: list[str] = []
    for n, row in read_jsonl(path, "not JSON"):
        if isinstance(row, str):
            out.append(row)
            continue
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected a JSON object (or a string) per line, got {type(row).__name__}")
        for key in ("question", "prompt", "text", "instruction"):
            if isinstance(row.get(key), str):
                out.append(row[key])
                break
        else:
            if isinstance(row.get("turns"), list) and row["turns"]:
                out.append(str(row["turns"][0]))
            else:
                raise DataError(f"{path}:{n}: no question/prompt/text/turns field")
    return out


# ------------------------------------------------------------------------------------------- one prompt
@dataclass
class DataConfig:
    target: str
    draft: str
    prompts: str
    start: int = 0
    count: int = 200
    max_new_tokens: int = 128
    response_temperature: float = 0.0  # how the target's response is produced (0 = greedy)
    temperature: float = 1.0  # the draft's sampling temperature for x_t and the labels
    keep_prob: float = 0.15
    seed: int = 0
    shard_size: int = 16
    chat: bool = True
    responder: str = "engine"  # how the target's responses were made: engine | hf-batch
    draft_identity: dict[str, Any] = field(default_factory=dict)

    def key(self) -> dict[str, Any]:
        """What must match for a resume to reuse finished shards."""
        d = asdict(self)
        d.pop("count")  # growing the prompt count keeps the shards already made
        return d


@dataclass
class PromptRecord:
    features: torch.Tensor  # (n, H) draft dtype, pre alignment
    features_post: torch.Tensor  # (n, H) post alignment
    label: torch.Tensor  # (n,) f32
    label_expected: torch.Tensor
    label_greedy: torch.Tensor
    mask: torch.Tensor  # (n,) bool, True = labelled
    position: torch.Tensor  # (n,) int32


@torch.no_grad()
def _hidden(model, ids: torch.Tensor) -> torch.Tensor:
    """HF causal LM over ids (1, T) -> final normed hidden states (T, H)."""
    return model.model(input_ids=ids).last_hidden_state[0]


@torch.no_grad()
def label_response(target, draft, prompt_ids: torch.Tensor, response: torch.Tensor, *, temperature: float,
                   keep_prob: float, generator: torch.Generator,
                   target_logits: torch.Tensor | None = None) -> PromptRecord:
    """prompt_ids (P,), response (n,) target tokens -> features and labels for the n response positions.
    Passes: target over prompt+y (skipped when `target_logits` (n, V), the target's logits for the n response
    tokens, were recorded while generating y), draft over prompt+y, draft over prompt+mixed."""
    P, n = prompt_ids.shape[0], response.shape[0]
    if n == 0:
        raise InputError("empty response")
    seq = torch.cat([prompt_ids, response])[None]  # (1, P+n)
    rows = slice(P - 1, P - 1 + n)  # row P-1+t predicts response token t
    if target_logits is None:
        tl = target.lm_head(_hidden(target, seq)[rows]).float()  # (n, V)
    else:
        tl = target_logits.float()
    dl = draft.lm_head(_hidden(draft, seq)[rows]).float()
    V = min(tl.shape[-1], dl.shape[-1])  # padded vocab rows beyond the shared vocabulary are never drafted
    tl, dl = tl[:, :V], dl[:, :V]  # (n, V)
    cfg = SamplingConfig(temperature=temperature) if temperature > 0 else SamplingConfig(temperature=1.0)
    p, q = process_logits(tl, cfg), process_logits(dl, cfg)  # (n, V)
    x = torch.multinomial(q, 1, generator=generator)[:, 0]  # (n,)
    label = acceptance_labels(p, q, x)
    label_exp = expected_acceptance(p, q)
    label_greedy = (tl.argmax(-1) == dl.argmax(-1)).float()
    keep = keep_mask(n, keep_prob, generator)
    mixed = mix_tokens(response, x, keep)
    hid = _hidden(draft, torch.cat([prompt_ids, mixed])[None])  # (P+n, H)
    feats = hid[rows]  # (n, H): hidden after consuming prompt + mixed_<t
    post = hid[P : P + n]  # (n, H): hidden after consuming prompt + mixed_<=t
    return PromptRecord(feats.contiguous(), post.contiguous(), label, label_exp, label_greedy, ~keep,
                        torch.arange(n, dtype=torch.int32))


def make_responder(dec, max_new_tokens: int, temperature: float = 0.0, seed: int = 0):
    """`respond(prompt_ids (1, P)) -> (response (n,), target logits (n, V))` with a loaded `SpecDecoder`
    (draft-model drafter): the target's response (greedy: exactly plain decoding's tokens, produced faster by
    lossless speculation) and the target's logits at each response token, recorded from the verification
    passes. Row j of a verification at cache length L saw the tokens up to index L+j and predicts index
    L+j+1; rows after a rejected token are overwritten by the next round, so every row kept saw the
    committed prefix: no separate teacher-forcing pass of the target is needed."""
    from specdec.config import SamplingConfig, StopConfig

    runner = dec.target
    plain_forward = runner.forward
    seen: dict[int, torch.Tensor] = {}  # sequence index -> the target's logits predicting the token there
    calls = {"n": 0}

    def recording_forward(tokens, tree_mask=None, depths=None, **kw):  # the runner's forward during a respond call
        start = runner.length
        logits, hidden = plain_forward(tokens, tree_mask=tree_mask, depths=depths, **kw)
        if tree_mask is None and logits is not None:  # (a prefill computes no logits)
            for j in range(tokens.shape[1]):
                seen[start + j + 1] = logits[0, j].clone()
        return logits, hidden

    stop = StopConfig(max_new_tokens=max_new_tokens)

    def respond(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls["n"] += 1
        seen.clear()
        sampling = SamplingConfig(temperature=temperature, seed=seed * 7_777 + int(ids.sum()) % 1_000_003)
        own = "forward" in vars(runner)  # a forward set on the instance (not the class's) is put back as it was
        runner.forward = recording_forward  # only while this call generates: the decoder is left as it was
        try:
            toks = dec.generate_ids(ids, sampling=sampling, stop=stop)
        finally:
            if own:
                runner.forward = plain_forward
            else:
                del runner.forward
        P = ids.shape[1]
        logits = torch.stack([seen[P + t] for t in range(len(toks))]) if toks else torch.zeros(0)
        return torch.tensor(toks, dtype=torch.long), logits

    return respond


def make_hf_batch_responder(model, pad_id: int, eos_ids: list[int], max_new_tokens: int, batch_size: int = 16):
    """Batched greedy responses with HF `generate` (left padding), plus the target's raw logits at every
    response token (`output_logits`: the logits each greedy token was chosen from). On a CPU a batch of 16
    costs little more than one sequence per step (decoding reads the weights once per step), ~4x cheaper
    per prompt than speculation on one prompt. Greedy up to numerics: padding changes nothing else."""

    @torch.no_grad()
    def respond(prompts: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        L, B = max(p.shape[1] for p in prompts), len(prompts)
        ids = torch.full((B, L), pad_id, dtype=torch.long)
        att = torch.zeros(B, L, dtype=torch.long)
        for b, p in enumerate(prompts):
            ids[b, L - p.shape[1]:] = p[0]
            att[b, L - p.shape[1]:] = 1
        out = model.generate(input_ids=ids, attention_mask=att, max_new_tokens=max_new_tokens, do_sample=False,
                             temperature=None, top_p=None, top_k=None, repetition_penalty=1.0, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=pad_id, eos_token_id=list(eos_ids))
        seqs = out.sequences[:, L:]  # (B, n)
        logits = torch.stack(out.logits, 1)  # (B, n, V)
        res = []
        for b in range(B):
            toks = seqs[b].tolist()
            n = next((i + 1 for i, t in enumerate(toks) if t in eos_ids), len(toks))  # keep the EOS token
            res.append((seqs[b, :n].clone(), logits[b, :n].float().clone()))
        return res

    return respond


# ------------------------------------------------------------------------------------------- shards
def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / MANIFEST)


def save_shard(path: Path, records: list[tuple[int, PromptRecord]]) -> int:
    from safetensors.torch import save_file

    cat = lambda name: torch.cat([getattr(r, name) for _, r in records])  # noqa: E731
    tensors = {
        "features": cat("features").to(torch.bfloat16).contiguous(),
        "features_post": cat("features_post").to(torch.bfloat16).contiguous(),
        "label": cat("label").float(),
        "label_expected": cat("label_expected").float(),
        "label_greedy": cat("label_greedy").float(),
        "mask": cat("mask").to(torch.uint8),
        "position": cat("position").int(),
        "prompt": torch.cat([torch.full((r.label.shape[0],), i, dtype=torch.int32) for i, r in records]),
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
    return int(tensors["label"].shape[0])


def shard_plan(cfg: DataConfig) -> list[tuple[int, int]]:
    """[(first prompt, end prompt)] per shard; shard boundaries depend only on start and shard_size."""
    out, s, end = [], cfg.start, cfg.start + cfg.count
    while s < end:
        e = min(s - (s - cfg.start) % cfg.shard_size + cfg.shard_size, end)
        out.append((s, e))
        s = e
    return out


def build_dataset(cfg: DataConfig, out_dir: str | os.PathLike, *, target, draft, tokenizer,
                  respond: Callable, prompts: list[str], batch_size: int = 1,
                  progress: bool = True, log: Callable[[str], None] = print, estimate_only: bool = False,
                  max_shards: int | None = None) -> dict[str, Any]:
    """Generate (or resume) the shards of `cfg` into `out_dir`. `respond(prompt_ids (1,P))` produces the
    target's response (n,), or (response, the target's logits for it (n, V)); with `batch_size` > 1 (a batched
    responder: make_hf_batch_responder) it takes a list of up to that many prompts and returns a list. Returns the
    manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(out)
    if manifest is not None and manifest.get("config_key") != cfg.key():
        raise DataError(
            f"{out} holds shards made with other settings; use another --out folder or delete it "
            f"(differences: {_diff(manifest.get('config_key', {}), cfg.key())})"
        )
    if manifest is None:
        manifest = {"format": "specdec-specdecpp-data", "config_key": cfg.key(), "shards": {}}
    manifest["config"] = asdict(cfg)
    if cfg.start + cfg.count > len(prompts):
        raise InputError(f"asked for prompts [{cfg.start}, {cfg.start + cfg.count}) but {cfg.prompts} has {len(prompts)}")
    plan = shard_plan(cfg)
    todo = [(s, e) for s, e in plan if not _done(out, manifest, s, e)]
    log(f"{len(plan)} shards of <= {cfg.shard_size} prompts; {len(plan) - len(todo)} already done, {len(todo)} to go")
    write_manifest(out, manifest)
    if not todo:
        return manifest

    def encode(i: int) -> torch.Tensor:  # chat: the template where the tokenizer has one, else raw text
        return torch.tensor(encode_prompt(tokenizer, prompts[i], chat=None if cfg.chat else False))

    def label(i: int, ids: torch.Tensor, out) -> PromptRecord:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + i)
        response, tlogits = out if isinstance(out, tuple) else (out, None)
        if response.numel() == 0:
            raise InputError(f"the target gave an empty response to prompt {i}")
        return label_response(target, draft, ids, response, temperature=cfg.temperature, keep_prob=cfg.keep_prob,
                              generator=g, target_logits=tlogits)

    batch = max(1, int(batch_size))

    def run(idx: list[int]) -> dict[int, PromptRecord]:
        ids = [encode(i) for i in idx]
        outs = respond([x[None] for x in ids]) if batch > 1 else [respond(x[None]) for x in ids]
        return {i: label(i, x, o) for i, x, o in zip(idx, ids, outs)}

    # ---- estimate from the first batch of prompts still to do
    H = draft.config.hidden_size
    n_prompts = sum(e - s for s, e in todo)
    t0 = time.perf_counter()
    s0, e0 = todo[0]
    cache = run(list(range(s0, min(e0, s0 + batch))))
    sec = (time.perf_counter() - t0) / len(cache)
    n_tok = sum(r.label.shape[0] for r in cache.values()) / len(cache)
    n_pos = n_prompts * cfg.max_new_tokens
    mb = n_pos * (H * 4 + 4 * 3 + 1 + 8) / 2**20
    est = {
        "prompts": n_prompts, "max_new_tokens": cfg.max_new_tokens, "positions_upper_bound": n_pos,
        "labelled_estimate": int(n_prompts * n_tok * (1 - cfg.keep_prob)), "disk_mb_upper_bound": round(mb, 1),
        "seconds_per_prompt": float(f"{sec:.3g}"), "measured_on_prompts": len(cache), "tokens_per_response": round(n_tok, 1),
        "eta_minutes": round(sec * n_prompts / 60, 1),
    }
    log(f"estimate: {n_prompts} prompts x <= {cfg.max_new_tokens} tokens = <= {n_pos} positions "
        f"(~{est['labelled_estimate']} labelled), <= {mb:.0f} MB on disk; {sec:.1f}s per prompt measured on the "
        f"first {len(cache)} (mean response {n_tok:.0f} tokens) -> ~{est['eta_minutes']} min")
    manifest["estimate"] = est
    write_manifest(out, manifest)
    if estimate_only:
        return manifest

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), disable=not progress) as bar:
        task = bar.add_task("prompts", total=n_prompts)
        bar.advance(task, len(cache))
        for k, (s, e) in enumerate(todo):
            if max_shards is not None and k >= max_shards:
                break
            t_shard = time.perf_counter()
            recs = []
            for b in range(s, e, batch):
                idx = list(range(b, min(e, b + batch)))
                if not all(i in cache for i in idx):
                    cache.update(run([i for i in idx if i not in cache]))
                    bar.advance(task, len(idx))
                recs += [(i, cache.pop(i)) for i in idx]
            name = f"shard-{s:05d}.safetensors"
            n = save_shard(out / name, recs)
            manifest["shards"][name] = {
                "prompts": [s, e], "positions": n, "labelled": int(sum(int(r.mask.sum()) for _, r in recs)),
                "seconds": round(time.perf_counter() - t_shard + (sec * len(recs) if k == 0 else 0.0), 1),
            }
            write_manifest(out, manifest)
    return manifest


def _done(out: Path, manifest: dict, s: int, e: int) -> bool:
    info = manifest["shards"].get(f"shard-{s:05d}.safetensors")
    return bool(info) and info["prompts"] == [s, e] and (out / f"shard-{s:05d}.safetensors").is_file()


def _diff(a: dict, b: dict) -> str:
    keys = sorted(set(a) | set(b))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)) or "none"

