"""What this folder's in-process A/B scripts share (`*_ab.py`): the prompts, the interleaved runs (each prompt through
every setup in a rotating order, several rounds, one process: this host's speed moves between windows, so setups are
compared only side by side), the medians of per-prompt time ratios, and the sizer spy that logs each round's kept
nodes with their predicted chances beside what the target accepted. Run the scripts from the repository root."""
import collections, json, os, statistics, sys, time

from specdec.budget import _depths
from specdec.config import StopConfig
from specdec.stats import GenerationStats

DEFAULT_PROMPTS = "docs/results/runners/2026-12-05-fused/prompts/piece-1.jsonl"


def args() -> tuple[int, int]:
    """The scripts' command line: [N prompts (18)] [ROUNDS (2)]."""
    return (int(sys.argv[1]) if len(sys.argv) > 1 else 18), (int(sys.argv[2]) if len(sys.argv) > 2 else 2)


def prompts(n: int) -> list[dict]:
    """The first n prompts of $PROMPTS (issue 23's piece 1 by default)."""
    return [json.loads(line) for line in open(os.environ.get("PROMPTS", DEFAULT_PROMPTS))][:n]


class Runs:
    """Interleaved generations: `setups` maps a name to (SpecConfig, prepare), prepare() called before each of its
    generations (None: nothing). Per setup and prompt the whole generation's seconds (`T`) and verification seconds
    (`V`); per setup the summed stats (`acc`: rounds, tokens, guard switch-offs); per prompt every setup's output."""

    def __init__(self, dec, setups: dict, rows: list[dict], rounds: int, max_new_tokens: int = 128) -> None:
        self.dec, self.setups, self.rows = dec, setups, rows
        self.T = collections.defaultdict(lambda: collections.defaultdict(list))
        self.V = collections.defaultdict(lambda: collections.defaultdict(list))
        self.acc = collections.defaultdict(collections.Counter)
        out = collections.defaultdict(dict)
        for spec, prepare in setups.values():  # warm-up (its stats not kept)
            if prepare:
                prepare()
            dec.generate("warm up", max_new_tokens=8, spec=spec)
        self.after_warmup()
        pairs = list(setups.items())
        t0 = time.time()
        for r in range(rounds):
            for i, row in enumerate(rows):
                ids = dec.encode(row["prompt"])
                k = (i + r) % len(pairs)
                for name, (spec, prepare) in pairs[k:] + pairs[:k]:
                    if prepare:
                        prepare()
                    st = GenerationStats()
                    t = time.perf_counter()
                    toks = dec.generate_ids(ids, stop=StopConfig(max_new_tokens=max_new_tokens), spec=spec, stats=st)
                    self.T[name][i].append(time.perf_counter() - t)
                    self.V[name][i].append(st.verify_s)
                    self.acc[name].update(rounds=st.rounds, tokens=st.new_tokens,
                                          offs=st.extra.get("guard_switched_off", 0))
                    out[i][name] = toks
        self.same = sum(len({str(v) for v in o.values()}) == 1 for o in out.values())
        print(f"{len(rows)} prompts x {rounds} rounds, {max_new_tokens} new tokens, greedy, {time.time() - t0:.0f} s; "
              f"outputs the same in every setup: {self.same}/{len(rows)}")

    def after_warmup(self) -> None:
        """Hook: called once after the warm-up generations (e.g. to clear a spy's counters)."""

    def tau(self, name: str) -> float:
        return self.acc[name]["tokens"] / self.acc[name]["rounds"]

    def ratio(self, name: str, ref: str, verify: bool = False) -> float:
        """Median over prompts of name's summed (verification) time over ref's."""
        D = self.V if verify else self.T
        tot = lambda nm: [sum(D[nm][i]) for i in range(len(self.rows))]  # noqa: E731
        return statistics.median(x / y for x, y in zip(tot(name), tot(ref)))


class SpiedRuns(Runs):
    """Runs whose sized drafters (`drafters`: setup name -> drafter or None) are spied on (`spy_sizer`) from the end
    of the warm-up: `R[name]` holds each setup's counters."""

    def __init__(self, dec, specs: dict, drafters: dict, rows: list[dict], rounds: int) -> None:
        self.R = collections.defaultdict(collections.Counter)
        for name, d in drafters.items():
            if d is not None:
                spy_sizer(self.R[name], d)
        super().__init__(dec, {name: (s, None) for name, s in specs.items()}, rows, rounds)

    def after_warmup(self) -> None:
        for c in self.R.values():  # the spies hold these counters: emptied, not replaced
            c.clear()


def spy_sizer(R: collections.Counter, d) -> None:
    """Log drafter d's sized rounds into R: rounds by kept nodes (n1..n4: count, accepted a1.., predicted p1..), the
    suffix rounds by their first node's kind, and the kept nodes by depth and source (count, accepted, predicted)."""
    cut, observe = d.sizer.cut, d.observe
    last = {}

    def cut2(parents, scores, tokens, spent=0.0, kinds=None):
        kept = cut(parents, scores, tokens, spent, kinds)
        ch = d.sizer.chances(parents, scores, kinds)
        dep = _depths(parents)
        last.update(n=len(kept), pred=sum(ch[j] for j in kept), kind=(kinds[0] if kinds and kept else ""),
                    nodes=[(min(dep[j], 3), ch[j], (kinds[j] or "store") if kinds else "store") for j in kept])
        return kept

    def observe2(result):
        if last:
            k = min(last["n"], 4)
            R.update({f"n{k}": 1, f"a{k}": result.num_accepted, f"p{k}": last["pred"]})
            if last["kind"]:
                R.update({f"{last['kind']} rounds": 1, f"{last['kind']} accepted": result.num_accepted})
            ok = set(result.accepted_nodes or ())
            for j, (dep, ch, kind) in enumerate(last["nodes"]):
                src = "store" if kind == "store" else "suffix"
                R.update({f"depth {dep} {src} predicted": ch, f"depth {dep} {src} accepted": j in ok,
                          f"depth {dep} {src} nodes": 1})
            last.clear()
        observe(result)

    d.sizer.cut, d.observe = cut2, observe2


def sized_rounds(R: collections.Counter) -> str:
    """The spy's rounds by kept nodes 1 / 2 / 3 / 4+: count, accepted a round, predicted."""
    return " / ".join(f"{R[f'n{k}']}: {R[f'a{k}'] / max(R[f'n{k}'], 1):.2f}, {R[f'p{k}'] / max(R[f'n{k}'], 1):.2f}"
                      for k in (1, 2, 3, 4))


def suffix_rounds(R: collections.Counter) -> str:
    kinds = sorted({k.split(" ")[0] for k in R if k.startswith("suffix")})
    return ", ".join(f"{k} {R[k + ' rounds']} rounds, {R[k + ' accepted'] / R[k + ' rounds']:.2f} accepted"
                     for k in kinds)


def kept_by_depth(R: collections.Counter) -> str:
    return "; ".join(f"depth {d} {src} {int(R[f'depth {d} {src} nodes'])}, {int(R[f'depth {d} {src} accepted'])}, "
                     f"{R[f'depth {d} {src} predicted']:.1f}" for d in range(4) for src in ("store", "suffix")
                     if R[f"depth {d} {src} nodes"])
