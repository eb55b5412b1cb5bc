"""`specdec check lossless`: every registered drafter x policy against plain decoding on one loaded runner.

Why a user-facing check: losslessness is this project's promise, and it depends on the runner as much as on
the code (a runner that is not batch-invariant -- bf16, repacked llama.cpp kernels -- can flip a near-tie
between a 1-row and a 5-row pass). So the same test the suite runs on tiny models runs here on your model,
weights and machine:

- greedy: N random prompts (random ordinary tokens with a repeated span, so copying drafters draft too);
  each drafter x policy must reproduce plain decoding token for token. A combination that cannot be built
  here (no draft model, no acceptance head for this draft, ...) is *skipped* with the reason, never counted
  as passed; one that never drafted is *vacuous* (it proved nothing), not passed either.
- sampling: per drafter, `samples` seeded runs of 3 tokens from one prompt (random tokens, the target's greedy
  continuation of them, the random tokens again: copying drafters then have a likely draft); the joint of the first two
  tokens (top-k support, so the table is small) is compared with the exact joint computed from the target
  runner's own logits, p(x1) p(x2 | x1), by Pearson's chi-square (cells with an expected count under 5
  pooled). A sample outside the support fails outright. The first round drafts 2 tokens (budget 3 - 1), so
  accepted, recovered and bonus tokens all enter the table.

The report (JSON, rewritten after every row) says which rows differ, where, and the drafted/accepted counts
that show a row was not vacuous.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from specdec.config import SamplingConfig, SpecConfig, StopConfig
from specdec.errors import InputError, SpecDecError
from specdec.stats import GenerationStats
from specdec.spec_check import draft_length

Say = Callable[[str], None]


@dataclass(frozen=True)
class LosslessConfig:
    """What `check lossless` runs. Options per drafter / policy name: {"aded": {"store": "empty"}, ...}."""

    prompts: int = 50  # random prompts for the greedy check
    prompt_tokens: tuple[int, int] = (8, 32)  # their length, lowest and highest
    max_new_tokens: int = 24
    samples: int = 600  # seeded runs per drafter for the sampling test; 0 = no sampling test
    top_k: int = 6  # the sampling test's support: top-k of each step (a k x k table)
    temperature: float = 1.0
    alpha: float = 1e-3  # a chi-square p-value below this fails
    k: int = 4  # draft tokens per round (initial, for adaptive policies)
    seed: int = 0
    drafters: tuple[str, ...] = ()  # () = every registered drafter
    policies: tuple[str, ...] = ()  # () = every registered policy
    drafter_options: dict = field(default_factory=dict)
    policy_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        lo, hi = self.prompt_tokens
        checks = [(self.prompts >= 1, f"--prompts must be >= 1, got {self.prompts}"),
                  (1 <= lo <= hi, f"prompt lengths need 1 <= low <= high, got {lo}, {hi}"),
                  (self.max_new_tokens >= 2, f"--max-new-tokens must be >= 2, got {self.max_new_tokens}"),
                  (self.samples >= 0, f"--samples must be >= 0, got {self.samples}"),
                  (self.top_k >= 2, f"--top-k must be >= 2 (a table of one cell tests nothing), got {self.top_k}"),
                  (math.isfinite(self.temperature) and self.temperature > 0,
                   f"--temperature must be a finite number > 0, got {self.temperature}"),
                  (0 < self.alpha < 1, f"--alpha must be in (0, 1), got {self.alpha}"),
                  (self.k >= 1, f"-k must be >= 1, got {self.k}")]
        for ok, msg in checks:
            if not ok:
                raise InputError(msg)
        from policies import POLICIES
        from specdec.drafters import DRAFTERS

        for name in self.drafters:
            DRAFTERS.get(name)  # unknown names list the known ones
        for name in self.policies:
            POLICIES.get(name)

    def combos(self) -> list[tuple[str, str]]:
        from policies import POLICIES
        from specdec.drafters import DRAFTERS

        drafters = list(self.drafters) or DRAFTERS.names()
        policies = list(self.policies) or POLICIES.names()
        return [(d, p) for d in drafters for p in policies]

    def spec(self, drafter: str, policy: str, k: int | None = None) -> SpecConfig:
        return SpecConfig(drafter=drafter, policy=policy, k=k or self.k, guard=False,
                          drafter_options=dict(self.drafter_options.get(drafter, {})),
                          policy_options=dict(self.policy_options.get(policy, {})))


def random_prompts(tokenizer, vocab_size: int, n: int, lengths: tuple[int, int], seed: int) -> list[list[int]]:
    """`n` prompts of ordinary tokens (no special ones), each ending with a copy of an earlier span of 2-5
    tokens, so that prompt lookup and the n-gram drafters find something to copy."""
    g = torch.Generator().manual_seed(seed)
    special = set(getattr(tokenizer, "all_special_ids", None) or [])
    top = min(vocab_size, len(tokenizer)) if hasattr(tokenizer, "__len__") else vocab_size
    pool = torch.tensor([i for i in range(top) if i not in special])
    lo, hi = lengths
    out = []
    for _ in range(n):
        length = int(torch.randint(lo, hi + 1, (1,), generator=g))
        ids = pool[torch.randint(0, len(pool), (length,), generator=g)].tolist()
        span = min(int(torch.randint(2, 6, (1,), generator=g)), (length - 1) // 2)
        if span >= 1:
            keep = length - span
            start = int(torch.randint(0, keep - span + 1, (1,), generator=g))  # the source lies in what is kept
            ids = ids[:keep] + ids[start: start + span]
        out.append(ids)
    return out


def _generate(dec, prompt: list[int], spec: SpecConfig, sampling: SamplingConfig, stop: StopConfig,
              stats: GenerationStats) -> list[int]:
    return dec.generate_ids(torch.tensor([prompt]), sampling=sampling, stop=stop, spec=spec, stats=stats)


def _reason(e: BaseException, with_type: bool = False) -> str:
    """An exception as the one-line reason of a skipped or failed row."""
    text = f"{type(e).__name__}: {e}" if with_type else str(e)
    return " ".join(text.split())[:300] if with_type else " ".join(text.split())


def _buildable(dec, spec: SpecConfig) -> str | None:
    """None if this drafter x policy can be built here, else why not (one line)."""
    from specdec.spec_check import check_spec

    try:
        check_spec(spec)
        dec.drafter_for(spec)
    except SpecDecError as e:
        return _reason(e)
    return None


def _first_difference(a: list[int], b: list[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_greedy(dec, cfg: LosslessConfig, on_row: Callable[[dict], None], say: Say) -> list[dict]:
    """One row per drafter x policy: status identical | differs | vacuous | skipped | failed."""
    prompts = random_prompts(dec.tokenizer, dec.target.vocab_size, cfg.prompts, cfg.prompt_tokens, cfg.seed)
    stop = StopConfig(max_new_tokens=cfg.max_new_tokens)
    greedy = SamplingConfig()
    t0 = time.perf_counter()
    plain = [_generate(dec, p, SpecConfig(), greedy, stop, GenerationStats()) for p in prompts]
    say(f"plain decoding: {len(prompts)} prompts in {time.perf_counter() - t0:.1f} s")
    rows = []
    for drafter, policy in cfg.combos():
        spec = cfg.spec(drafter, policy)
        row = {"drafter": drafter, "policy": policy, "k": draft_length(spec), "drafter_options": spec.drafter_options,
               "policy_options": spec.policy_options, "prompts": len(prompts)}
        why = _buildable(dec, spec)
        if why is not None:
            row.update(status="skipped", reason=why)
        else:
            st, differ, t0 = GenerationStats(), [], time.perf_counter()
            try:
                for i, (p, ref) in enumerate(zip(prompts, plain)):
                    out = _generate(dec, p, spec, greedy, stop, st)
                    if out != ref:
                        differ.append({"prompt": i, "position": _first_difference(out, ref),
                                       "plain": ref, "speculative": out})
            except SpecDecError as e:  # refused while running (e.g. a policy that reads a draft model's hidden
                row.update(status="skipped", reason=_reason(e))  # states, with a model-free drafter)
            except Exception as e:  # noqa: BLE001 - a crashing combination is a failed row, the others go on
                row.update(status="failed", reason=_reason(e, with_type=True))
            else:
                status = "differs" if differ else ("vacuous" if st.drafted == 0 else "identical")
                row.update(status=status, identical_prompts=len(prompts) - len(differ),
                           differing=differ[:5], drafted=st.drafted, accepted=st.accepted,
                           acceptance_rate=st.acceptance_rate if st.drafted else None,
                           seconds=time.perf_counter() - t0)
        rows.append(row)
        on_row(row)
    return rows


@torch.no_grad()
def exact_first_two(runner, prompt: list[int], sampling: SamplingConfig) -> dict[tuple[int, int], float]:
    """p(x1, x2 | prompt) for every pair with p > 0, from the runner's own logits, split as the loop splits
    a prompt (the last token pending, each step one more row)."""
    from specdec.sampling import process_logits

    ids = torch.tensor([prompt])  # (1, T)
    runner.reset()
    if ids.shape[1] > 1:
        runner.prefill(ids[:, :-1])
    logits, _ = runner.forward(ids[:, -1:])  # (1, 1, V)
    p1 = process_logits(logits[0], sampling)[0]  # (V,)
    joint = {}
    for x1 in torch.nonzero(p1).flatten().tolist():
        logits, _ = runner.forward(torch.tensor([[prompt[-1], x1]]))  # (1, 2, V)
        p2 = process_logits(logits[0], sampling)[1]  # (V,)
        for x2 in torch.nonzero(p2).flatten().tolist():
            joint[(x1, x2)] = float(p1[x1] * p2[x2])
    runner.reset()
    return joint


def chi_square(counts: dict, probs: dict, min_expected: float = 5.0) -> tuple[float, float, int]:
    """(statistic, p-value, cells) of Pearson's test of `counts` against `probs` (pooled small cells). A count
    where the probability is 0 gives p-value 0."""
    from scipy.stats import chisquare

    if any(c > 0 and probs.get(key, 0.0) <= 0 for key, c in counts.items()):
        return math.inf, 0.0, len(probs)
    n = sum(counts.values())
    total = sum(probs.values())
    obs, exp, small_o, small_e = [], [], 0.0, 0.0
    for key, p in probs.items():
        e = p / total * n
        if e >= min_expected:
            obs.append(counts.get(key, 0))
            exp.append(e)
        else:
            small_o, small_e = small_o + counts.get(key, 0), small_e + e
    if small_e > 0:
        obs.append(small_o)
        exp.append(small_e)
    if len(obs) < 2:
        return 0.0, 1.0, len(obs)
    res = chisquare(obs, exp)
    return float(res.statistic), float(res.pvalue), len(obs)


def check_sampling(dec, cfg: LosslessConfig, on_row: Callable[[dict], None], say: Say) -> list[dict]:
    """One row per drafter (constant policy, 2 drafted tokens): status pass | fail | vacuous | skipped | failed."""
    if cfg.samples == 0:
        return []
    # seed + the target's own greedy continuation + seed again: copying drafters then propose that continuation,
    # which the target finds likely, so acceptances (not only rejections) enter the table
    seed = random_prompts(dec.tokenizer, dec.target.vocab_size, 1, (4, 4), cfg.seed + 1)[0][:4]
    cont = _generate(dec, seed, SpecConfig(), SamplingConfig(), StopConfig(max_new_tokens=6, eos_token_ids=()),
                     GenerationStats())
    prompt = seed + cont + seed
    base = SamplingConfig(temperature=cfg.temperature, top_k=cfg.top_k)
    exact = exact_first_two(dec.target, prompt, base)
    stop = StopConfig(max_new_tokens=3, eos_token_ids=())
    rows = []
    for drafter in dict.fromkeys(d for d, _ in cfg.combos()):
        spec = cfg.spec(drafter, "constant", k=2)
        row = {"drafter": drafter, "policy": "constant", "k": 2, "samples": cfg.samples, "top_k": cfg.top_k,
               "temperature": cfg.temperature, "prompt": prompt}
        why = _buildable(dec, spec)
        if why is not None:
            row.update(status="skipped", reason=why)
            rows.append(row)
            on_row(row)
            continue
        counts: dict[tuple[int, int], int] = {}
        st, t0 = GenerationStats(), time.perf_counter()
        try:
            for s in range(cfg.samples):
                out = _generate(dec, prompt, spec, SamplingConfig(**{**asdict(base), "seed": cfg.seed * 100003 + s}),
                                stop, st)
                counts[(out[0], out[1])] = counts.get((out[0], out[1]), 0) + 1
        except SpecDecError as e:
            row.update(status="skipped", reason=_reason(e))
        except Exception as e:  # noqa: BLE001
            row.update(status="failed", reason=_reason(e, with_type=True))
        else:
            stat, pvalue, cells = chi_square(counts, exact)
            status = "vacuous" if st.drafted == 0 else ("pass" if pvalue >= cfg.alpha else "fail")
            # a peaked distribution pools into few cells: the test then tells little (reported, not hidden)
            row.update(status=status, chi2=stat if math.isfinite(stat) else None, pvalue=pvalue, cells=cells,
                       low_power=cells < 4,
                       outside_support=sum(c for key, c in counts.items() if key not in exact),
                       drafted=st.drafted, accepted=st.accepted, seconds=time.perf_counter() - t0)
        rows.append(row)
        on_row(row)
    return rows


GREEDY_OK = ("identical",)
SAMPLING_OK = ("pass",)


def summarize(report: dict) -> dict:
    """Counts by status and the verdict: passed when no row differs, fails or crashed (skipped and vacuous
    rows are listed, not passed)."""
    greedy, sampling = report.get("greedy", []), report.get("sampling", [])
    by = {}
    for part, rows in (("greedy", greedy), ("sampling", sampling)):
        by[part] = {}
        for r in rows:
            by[part][r["status"]] = by[part].get(r["status"], 0) + 1
    bad = [r for r in greedy if r["status"] in ("differs", "failed")]
    bad += [r for r in sampling if r["status"] in ("fail", "failed")]
    checked = sum(r["status"] in GREEDY_OK for r in greedy) + sum(r["status"] in SAMPLING_OK for r in sampling)
    return {"counts": by, "passed": not bad and checked > 0, "problems": len(bad), "checked": checked}


def run_check(dec, cfg: LosslessConfig, write: Callable[[dict], None], say: Say) -> dict:
    """Greedy rows, then sampling rows; `write(report)` after every row (complete: false until the end)."""
    report = {"config": {**asdict(cfg), "runner": dec.target.name, "weights": dec.target.weights,
                         "exact_query_len": dec.target.query_len},
              "greedy": [], "sampling": [], "complete": False}

    def add(part):
        def on_row(row):
            report[part].append(row)
            report["summary"] = summarize(report)
            say(_row_line(part, row))
            write(report)
        return on_row

    check_greedy(dec, cfg, add("greedy"), say)
    check_sampling(dec, cfg, add("sampling"), say)
    report["complete"] = True
    report["summary"] = summarize(report)
    write(report)
    return report


def _row_line(part: str, r: dict) -> str:
    name = f"{r['drafter']} x {r['policy']}" if part == "greedy" else r["drafter"]
    if r["status"] in ("skipped", "failed"):
        return f"{part} {name}: {r['status']} ({r['reason']})"
    if part == "greedy":
        return (f"greedy {name}: {r['status']} ({r['identical_prompts']}/{r['prompts']} identical, "
                f"{r['accepted']}/{r['drafted']} drafted tokens accepted)")
    weak = "; low power: raise --samples or --temperature" if r.get("low_power") else ""
    return (f"sampling {name}: {r['status']} (p = {r['pvalue']:.3g}, {r['cells']} cells, "
            f"{r['accepted']}/{r['drafted']} accepted{weak})")
