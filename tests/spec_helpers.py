"""Helpers shared by the engine-core tests: reference decoding, scripted drafters, a chi-square check."""
from __future__ import annotations

import copy
import importlib.util
import pathlib

import numpy as np
import torch
from scipy import stats as sps

from specdec.drafters.base import Draft, DraftContext, DrafterBase, DraftTree, VerifyResult


def _root_conftest():
    """tests/conftest.py's helpers. `from conftest import ...` is ambiguous once several test folders have a
    conftest.py (whichever was imported last answers), so load ours by path under a unique name."""
    spec = importlib.util.spec_from_file_location("_specdec_tests_conftest", pathlib.Path(__file__).with_name("conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_conftest = _root_conftest()
make_model, make_tokenizer, random_prompts, VOCAB = (
    _conftest.make_model, _conftest.make_tokenizer, _conftest.random_prompts, _conftest.VOCAB)

torch.set_num_threads(1)  # tiny models: threads only add overhead (and the test machine is shared)


# ---------------------------------------------------------------- models
def close_draft(target: torch.nn.Module, eps: float = 0.15, seed: int = 1) -> torch.nn.Module:
    """A copy of `target` with noise of relative size `eps` on every weight (~75% greedy agreement at 0.15)."""
    draft = copy.deepcopy(target)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(eps * p.std() * torch.randn(p.shape, generator=g) if p.numel() > 1 else 0.0)
    return draft


@torch.no_grad()
def hf_greedy(model: torch.nn.Module, prompt: torch.Tensor, n: int) -> list[int]:
    """Greedy continuation by recomputing HF's full forward every step (no cache, nothing of ours)."""
    ids = prompt.clone()
    out = []
    for _ in range(n):
        nxt = int(model(ids).logits[0, -1].argmax())
        out.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out


# ---------------------------------------------------------------- drafters
class ScriptedDrafter(DrafterBase):
    """Proposes, in round r, `script[r](ctx)` -> list of ints (a chain). Records every context it saw."""

    name = "scripted"

    def __init__(self, script):
        self.script = script
        self.seen: list[DraftContext] = []
        self.results: list[VerifyResult] = []
        self.starts = 0

    def start(self, prompt_ids):
        self.starts += 1
        self.round = 0

    def propose(self, ctx):
        self.seen.append(ctx)
        toks = self.script(self.round, ctx)
        self.round += 1
        return Draft(tokens=torch.tensor([toks], dtype=torch.long).reshape(1, -1))

    def observe(self, result):
        self.results.append(result)


def oracle_script(continuation: list[int], prompt_len: int, k: int | None = None, wrong_after=None, vocab: int = 64):
    """A script drafting the true (plain-decoding) continuation. `wrong_after[r]` = how many correct tokens
    round r drafts before turning wrong (the rest of its `k` tokens are wrong); None = all correct."""

    def script(r, ctx):
        pos = ctx.tokens.shape[1] - prompt_len  # generated so far
        n = ctx.max_draft if k is None else min(k, ctx.max_draft)
        if wrong_after is not None:
            n_ok, n_total = wrong_after[r]
            assert n_total <= ctx.max_draft, "script asks for more than the loop allows"
            good = continuation[pos : pos + n_ok]
            bad = [(continuation[pos + n_ok + j] + 1 + j) % vocab or 3 for j in range(n_total - n_ok)]
            return good + bad
        return continuation[pos : pos + n]

    return script


class RandomTreeDrafter(DrafterBase):
    """Garbage: random tokens arranged as random trees (or chains), any length up to max_draft."""

    name = "random-tree"

    def __init__(self, vocab: int, seed: int = 0, trees: bool = True, hint: list[int] | None = None, prompt_len=0):
        self.g = torch.Generator().manual_seed(seed)
        self.vocab, self.trees, self.hint, self.prompt_len = vocab, trees, hint, prompt_len

    def start(self, prompt_ids):
        pass

    def propose(self, ctx):
        K = int(torch.randint(0, ctx.max_draft + 1, (1,), generator=self.g))
        toks = torch.randint(0, self.vocab, (1, K), generator=self.g)
        if self.hint is not None and K:  # plant the true next token somewhere so some paths get accepted
            pos = ctx.tokens.shape[1] - self.prompt_len
            toks[0, int(torch.randint(0, K, (1,), generator=self.g))] = self.hint[pos]
        if not self.trees or K == 0:
            return Draft(tokens=toks)
        parents = [int(torch.randint(-1, i, (1,), generator=self.g)) for i in range(K)]
        return Draft(tokens=toks, tree=DraftTree(parents))

    def observe(self, result):
        pass


class EmptyDrafter(DrafterBase):
    name = "empty"

    def __init__(self):
        self.calls = 0

    def start(self, prompt_ids):
        pass

    def propose(self, ctx):
        self.calls += 1
        return Draft.empty()

    def observe(self, result):
        pass


# ---------------------------------------------------------------- statistics
def chi2_pvalue(counts, probs, min_expected: float = 5.0, ddof: int = 0) -> float:
    """Pearson chi-square goodness of fit of `counts` (N,) to `probs` (N,). Cells with a small expected count
    are pooled into one. A count in a cell of probability 0 fails outright (p-value 0). `ddof`: degrees of
    freedom to remove beyond the usual one (e.g. rows - 1 for a table of conditional distributions)."""
    counts = np.asarray(counts, dtype=float).ravel()
    probs = np.asarray(probs, dtype=float).ravel()
    probs = probs / probs.sum()
    n = counts.sum()
    if np.any(counts[probs <= 0] > 0):
        return 0.0
    exp = probs * n
    big = exp >= min_expected
    obs_c = list(counts[big])
    exp_c = list(exp[big])
    if (~big).any() and exp[~big].sum() > 0:
        obs_c.append(counts[~big].sum())
        exp_c.append(exp[~big].sum())
    if len(obs_c) < 2:
        return 1.0
    return float(sps.chisquare(obs_c, exp_c, ddof=ddof).pvalue)


def install_tiny_zoo(monkeypatch, models: dict, tokenizer) -> list[str]:
    """Serve tiny random models by name through `specdec.api._load_hf` (the one place models get loaded) and
    their tokenizer through `specdec.api._load_tokenizer`;
    unknown names raise ModelLoadError listing the known ones. Returns the list of names loaded so far."""
    import specdec.api
    from specdec.errors import ModelLoadError

    loaded: list[str] = []

    def fake_load(name, engine):
        if name not in models:
            raise ModelLoadError(f"no tiny model {name!r}; known: {', '.join(models)}")
        loaded.append(name)
        return models[name], tokenizer

    def fake_tokenizer(name, engine):
        if name not in models:
            raise ModelLoadError(f"no tiny model {name!r}; known: {', '.join(models)}")
        return tokenizer

    import specdec.zoo.load

    real_check = specdec.zoo.load.check_model_name

    def fake_check(name, cache_dir=None, role="model"):
        if role == "mlm":  # masked LMs are not part of the tiny zoo
            return real_check(name, cache_dir, role)
        if name not in models:
            raise ModelLoadError(f"{role}: no tiny model {name!r}; known: {', '.join(models)}")

    monkeypatch.setattr(specdec.zoo.load, "check_model_name", fake_check)
    monkeypatch.setattr(specdec.api, "_load_hf", fake_load)
    monkeypatch.setattr(specdec.api, "_load_tokenizer", fake_tokenizer)
    return loaded



def pin_pass_costs(monkeypatch, costs) -> None:
    """Make every sized drafter read `costs` instead of timing the runner. Why: an in-memory toy model is timed
    anew on each run (nothing names it on disk), and on a busy 2-core CI machine its curve came out so steep that
    no node paid: `accepted > 0` failed there (CI, 2026-12-05) while it passed here. Identity holds for any
    curve; a test that wants drafts accepted has to say which curve it means."""
    import specdec.runners.costs as costs_module

    monkeypatch.setattr(costs_module, "pass_costs", lambda runner, cache_dir=None, **kw: costs)
