"""`draft-model`: a small causal LM with the target's tokenizer drafts token by token."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from policies.base import DraftStep
from specdec.drafters.base import Draft, DraftContext, DrafterBase, DraftTree, VerifyResult
from specdec.drafters.prompt_lookup import continuation
from specdec.drafters.registry import DRAFTERS, DrafterEnv
from specdec.runners.base import Runner
from specdec.errors import InputError, TokenizerMismatchError
from specdec.sampling import process_logits, sample


def check_same_vocabulary(target_tok, draft_tok) -> None:
    """Raise TokenizerMismatchError unless both tokenizers map the same strings to the same ids."""
    if target_tok is None or draft_tok is None:
        return
    tv, dv = target_tok.get_vocab(), draft_tok.get_vocab()
    if tv != dv:
        only_t = len(set(tv.items()) - set(dv.items()))
        raise TokenizerMismatchError(
            f"the draft's tokenizer differs from the target's ({len(dv)} vs {len(tv)} tokens, {only_t} target "
            "entries missing or with other ids); draft-model speculation needs the same vocabulary. "
            "Use a draft from the target's family, or a model-free drafter (prompt-lookup, aded)."
        )


class DraftModelDrafter(DrafterBase):
    name = "draft-model"

    def __init__(self, runner: Runner, target_vocab: int, tree_nodes: int = 0, tree_branch: int = 2,
                 tree_width: int = 4, costs=None, draft_costs=None, guess: int = 0, store=None,
                 guess_sync: bool = True) -> None:
        """guess: a chain's draft passes also run up to this many tokens copied from the context after the
        drafted one (0: one token a pass); where the draft would have drafted them, they cost no pass of their
        own. guess_sync: the round's first pass (the sync over the tokens committed since the last round) carries
        them too. costs: for sized trees, the target's pass costs (`line(rows)`, specdec.runners.costs.PassCosts), else
        None (the tree is tree_nodes nodes). draft_costs: the draft runner's own pass costs (`draft_costs(rows)`
        seconds): a sized tree then stops deepening where the next draft pass is not expected to pay for itself;
        None: it deepens while any node of the last depth is kept."""
        from specdec.budget import TreeSizer

        self.sizer = TreeSizer(costs) if costs is not None else None
        self.draft_costs = draft_costs if costs is not None else None
        self.runner = runner
        self.target_vocab = target_vocab
        self.tree_nodes, self.tree_branch, self.tree_width = tree_nodes, tree_branch, tree_width
        self.cached = torch.zeros(0, dtype=torch.long)  # (n,) token ids whose KV the draft cache holds
        self.guess = guess
        self.store = store  # a TrigramStore: guesses from its tri-grams where the context has no 2-token match
        self.guess_sync = guess_sync

    @property
    def compile_seconds(self) -> float:
        return self.runner.compile_seconds

    def start(self, prompt_ids: torch.Tensor) -> None:
        self.runner.reset()
        self.cached = torch.zeros(0, dtype=torch.long)
        if self.sizer is not None:
            self.sizer.reset_streak()

    def _sync(self, seq: torch.Tensor, need_hidden: bool, room: int = 0) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                                 list[int], list]:
        """Roll the draft cache back to its longest prefix shared with `seq` (T,), feed the rest; returns the
        draft's logits (V,) for the token after `seq` (and its hidden state (1, H) if asked), then the up to
        `room` guessed tokens the same pass ran after `seq` and their rows ((logits (V,), hidden) after each;
        not committed: `_keep` commits those the draft turns out to draft)."""
        n = min(len(self.cached), len(seq) - 1)  # always re-run at least the last token to get its logits
        same = (self.cached[:n] == seq[:n]).long()
        n = int(same.cumprod(0).sum()) if n else 0
        self.runner.rollback(n)
        feed = seq[n:][None]  # (1, F)
        if feed.shape[1] > 8:  # a prompt: eager prefill, then the last token through the compiled step
            self.runner.prefill(feed[:, :-1])
            feed = feed[:, -1:]
        F = feed.shape[1]
        fed = self._guesses(seq.numpy(), min(room, self.runner.max_pass - F)) if room > 0 else []
        x = torch.cat([feed, torch.tensor([fed], dtype=feed.dtype)], 1) if fed else feed  # (1, F + G)
        logits, hidden = self.runner.forward(x, need_hidden=need_hidden)  # (1, F + G, V), (1, F + G, H) or None
        self.runner.commit(F)
        self.cached = seq.clone()
        rows = [self._row(logits, hidden, j, need_hidden) for j in range(F - 1, F + len(fed))]  # after seq[-1], guesses
        return *rows[0], fed, rows[1:]

    @staticmethod
    def _row(out: torch.Tensor, hid: torch.Tensor | None, j: int, need_hidden: bool) -> tuple:
        """Row j of a pass's output (1, F, V) and hidden states (1, F, H): (logits (V,), hidden (1, H) or None)."""
        return out[0, j], (hid[:, j] if need_hidden and hid is not None else None)

    def draft_limit(self, policy_max: int) -> int:
        """Tree mode: the node budget (the policy's k caps the depth); chain: the policy's k."""
        return self.tree_nodes if self.tree_nodes else policy_max

    def propose(self, ctx: DraftContext) -> Draft:
        if self.tree_nodes and not ctx.policy.needs_hidden:
            return self._propose_tree(ctx)
        # after the sync the cache holds all T committed tokens, then max_draft - 1 drafted ones are fed
        # (judged on T, not on the cache's stale length: the draft's context may be shorter than the target's)
        if ctx.tokens.shape[1] + ctx.max_draft > self.runner.max_context:
            return Draft.empty()
        need_hidden = bool(ctx.policy.needs_hidden)
        # the sync pass carries guesses too (`guess_sync`): for the first drafted tokens after the committed ones
        room = min(self.guess, ctx.max_draft - 1) if self.guess_sync else 0
        # fed: tokens the last draft pass ran after what is committed (drafted or guessed); rows[j]: the rows
        # (logits (V,), hidden (1, H)) after fed[j]; used: how many of fed the draft kept so far (committed when
        # the pass is done with)
        logits, hidden, fed, rows = self._sync(ctx.tokens[0], need_hidden, room)
        used = 0
        toks: list[int] = []
        qs: list[torch.Tensor] = []
        passes = 1  # draft passes this round (the sync's included)
        while True:
            if ctx.sampling.greedy:
                tok, top = self._greedy(logits)
                tok_p = top
            else:
                q = process_logits(self._fit(logits), ctx.sampling)  # (V,)
                tok = int(sample(q[None], ctx.generator)[0])
                top, tok_p = float(q.max()), float(q[tok])
                qs.append(q)
            toks.append(tok)
            step = DraftStep(index=len(toks) - 1, token=tok, token_prob=tok_p, top_prob=top, hidden=hidden)
            if len(toks) == ctx.max_draft or not ctx.policy.keep_drafting(step):
                break
            if used < len(fed) and fed[used] == tok:  # the last pass guessed this token: its row is the next step
                logits, hidden = rows[used]
                used += 1
                continue
            self._keep(fed, used)
            # a pass over the drafted token and up to `guess` tokens copied from the context after it: each guess
            # the draft itself would have drafted saves a pass (same tokens as one pass per token: rows do not
            # depend on the rows beside them on the torch runner)
            seq = np.concatenate([ctx.tokens[0].numpy(), np.asarray(toks)])
            room = min(self.guess, ctx.max_draft - len(toks) - 1, self.runner.max_pass - 1)  # exact mode: its rows
            fed = [tok] + self._guesses(seq, room)
            out, hid = self.runner.forward(torch.tensor([fed]), need_hidden=need_hidden)  # (1, F, V)
            rows = [self._row(out, hid, j, need_hidden) for j in range(len(fed))]
            logits, hidden = rows[0]
            used = 1
            passes += 1
        self._keep(fed, used)
        q_all = torch.stack(qs)[None] if qs else None  # (1, K, V)
        return Draft(tokens=torch.tensor([toks]), q=q_all, info={"draft_passes": passes})

    def _guesses(self, seq: np.ndarray, limit: int) -> list[int]:
        """Up to `limit` tokens likely to follow `seq` (T,): the context's continuation of its last 3 or 2 tokens,
        else the store's most likely chain (if any), else the continuation of the last token."""
        g, n = continuation(seq, 3, 1, limit)
        if n >= 2 or self.store is None or limit < 1:
            return [int(t) for t in g]
        a, b, out = int(seq[-2]) if len(seq) > 1 else None, int(seq[-1]), []
        while len(out) < limit:
            succ, _ = self.store.successors(a, b, backoff=True)
            if not succ:
                break
            out.append(int(succ[0]))
            a, b = b, out[-1]
        return out or [int(t) for t in g]

    def _keep(self, fed: list[int], used: int) -> None:
        """Commit the first `used` tokens of the last draft pass (the rest were guesses the draft did not make)."""
        if used:
            self.runner.commit(used)
            self.cached = torch.cat([self.cached, torch.tensor(fed[:used])])

    def _propose_tree(self, ctx: DraftContext) -> Draft:
        """EAGLE-2-style tree from the draft model: each frontier node's `tree_branch` most likely tokens are
        candidates, ranked by path probability (the product of the draft's probabilities from the root); the
        best `tree_width` become the next frontier, until the node budget or the depth cap (the policy's k).
        One draft pass per depth over the whole tree so far (tree attention, nothing committed). Children are
        chosen, not sampled: q is one-hot (None), which keeps speculative sampling lossless in verify()."""
        seq = ctx.tokens[0]
        budget = min(ctx.max_draft, self.tree_nodes)
        max_depth = min(budget, ctx.policy_k or budget)
        if budget < 1 or len(seq) + budget > self.runner.max_context:
            return Draft.empty()
        logits, *_ = self._sync(seq, False)
        spent = self.draft_costs(1) if self.draft_costs is not None else 0.0  # the model's seconds this round
        toks: list[int] = []
        parents: list[int] = []
        path_p: list[float] = []
        frontier = [(-1, logits, 1.0)]  # (node, the draft's logits for its children, its path probability)
        for depth in range(max_depth):
            cands = []
            for node, lg, pp in frontier:
                probs = torch.softmax(self._fit(lg).float(), -1)  # (V,)
                top = torch.topk(probs, self.tree_branch)
                cands += [(pp * float(p), node, int(t)) for p, t in zip(top.values, top.indices)]
            cands.sort(key=lambda c: -c[0])
            chosen = cands[: min(self.tree_width, budget - len(toks))]
            new = []
            for pp, parent, tok in chosen:
                toks.append(tok)
                parents.append(parent)
                path_p.append(pp)
                new.append(len(toks) - 1)
            if len(toks) >= budget or depth == max_depth - 1 or not new:
                break
            if self.sizer is not None:  # the next draft pass runs the whole tree so far: stop where it does not pay
                step = self.draft_costs(len(toks)) if self.draft_costs is not None else None
                if not self.sizer.deepen_pays(parents, path_p, new, step, spent):
                    break
                spent += step or 0.0
            tree = DraftTree(parents)
            out, _ = self.runner.forward(torch.tensor([toks]), tree_mask=tree.ancestor_mask(),
                                         depths=torch.tensor(tree.depths))  # (1, N, V)
            frontier = [(i, out[0, i], path_p[i]) for i in new]
        if self.sizer is not None:  # the nodes that pay for their row on the target's pass
            kept = self.sizer.cut(parents, path_p, toks, spent)
            toks, path_p = [toks[j] for j in kept], [path_p[j] for j in kept]
            parents = DraftTree(parents).subset_parents(kept)
        if not toks:
            return Draft.empty()
        return Draft(tokens=torch.tensor([toks]), tree=DraftTree.of(parents), scores=torch.tensor([path_p]),  # (1, N)
                     info={"tree_size": len(toks), "expected_accepted": sum(path_p)})

    def _greedy(self, logits: torch.Tensor) -> tuple[int, float]:
        """The draft's greedy token among the target's ids and its probability, from the draft's own logits (Vd,)
        without widening them to the target's vocabulary (what `_fit` does, 0.8 ms a step on the 0.5B's 65536
        rows): the ids are ascending, so the first maximum is the same token either way."""
        ids = self.runner.vocab_ids
        V = self.target_vocab
        if ids is not None:
            lg = logits[: int((ids < V).sum())]  # rows of ids the target has (a prefix: ascending ids)
        else:
            lg = logits[:V]
        j = int(lg.argmax())
        top = float(torch.softmax(lg, -1)[j])
        return (int(ids[j]) if ids is not None else j), top

    def _fit(self, logits: torch.Tensor) -> torch.Tensor:
        """Draft logits (Vd,) -> (Vt,): padded rows never sampled, extra rows dropped; a draft whose output
        layer computes only some token ids (`vocab=N`) has the others at -inf (never drafted)."""
        V = self.target_vocab
        ids = self.runner.vocab_ids
        if ids is not None:
            full = logits.new_full((V,), float("-inf"))
            keep = ids < V
            full[ids[keep]] = logits[keep]
            return full
        if logits.shape[0] == V:
            return logits
        if logits.shape[0] > V:
            return logits[:V]
        return torch.cat([logits, logits.new_full((V - logits.shape[0],), float("-inf"))])

    def observe(self, result: VerifyResult) -> None:
        """The next propose() rolls the cache back to what was committed; sized trees learn from it."""
        if self.sizer is not None:
            self.sizer.observe(result.accepted_nodes, result.tokens[0].tolist())


# the draft's output layer by default: the 65536 lowest token ids where the draft runs on the torch runner and its
# vocabulary is larger (docs/runners.md, the speed run after the one-call layer loop: the 0.5B's pass 15.7 ->
# 12.7 ms, tau unchanged, 3.1 % of the target's tokens have higher ids)
DEFAULT_VOCAB = 65536
MAX_GUESS = 16  # guessed tokens a draft pass may carry
# guessed tokens by default on the torch runner, whose passes of a few rows cost little more than one (the 0.5B:
# 15.0 / 17.0 / 18.6 ms for 1 / 2 / 4 rows) and give the same rows as passes of one; llama.cpp's do not (a
# 2-row pass 1.54x a 1-row one, docs/runners.md), so it gets none. Measured: docs/runners.md, "Draft passes
# that carry guesses".
DEFAULT_GUESS = 4
GUESS_FROM = ("context", "store")  # store: the bundled ADED store's tri-grams where the context has no 2-token match


def check_options(draft: str | None = None, vocab: int | None = None, draft_weights: str | None = None,
                  draft_backend: str | None = None, tree_nodes: int = 0, tree_branch: int = 2,
                  tree_width: int = 4, sized: bool = False, guess: int | None = None,
                  guess_from: str = "context", guess_sync: bool = True) -> None:
    """The draft-model drafter's option checks that need no model (hybrid runs them too)."""
    from specdec.config import WEIGHTS
    from specdec.runners import check_backend

    if tree_nodes < 0 or tree_branch < 1 or tree_width < 1:
        raise InputError(f"draft-model: need tree_nodes >= 0 (0 = a chain), tree_branch >= 1 and tree_width >= 1, "
                         f"got {tree_nodes}, {tree_branch}, {tree_width}")
    if not isinstance(sized, bool):
        raise InputError(f"draft-model: sized must be true or false, got {sized!r}")
    if sized and not tree_nodes:
        raise InputError("draft-model: sized=true sizes trees: pass tree_nodes=N too (the node cap, e.g. 16)")

    if guess is not None and (not isinstance(guess, int) or isinstance(guess, bool) or not 0 <= guess <= MAX_GUESS):
        raise InputError(f"draft-model: guess must be an integer from 0 to {MAX_GUESS}, got {guess!r}")
    if guess_from not in GUESS_FROM:
        raise InputError(f"draft-model: guess_from must be one of {', '.join(GUESS_FROM)}, got {guess_from!r}")
    if not isinstance(guess_sync, bool):
        raise InputError(f"draft-model: guess_sync must be true or false, got {guess_sync!r}")
    if guess and tree_nodes:
        raise InputError("draft-model: guess= drafts a chain; it does not go with tree_nodes=")
    if vocab is not None and vocab < 0:
        raise InputError(f"draft-model: vocab must be >= 0 (0 = the whole vocabulary), got {vocab}")
    if draft_weights is not None and draft_weights not in WEIGHTS:
        raise InputError(f"draft-model: draft_weights must be one of {', '.join(WEIGHTS)}, got {draft_weights!r}")
    if draft_backend is not None:
        check_backend(draft_backend, "draft-model: draft_backend")


@DRAFTERS.register("draft-model", check=check_options)
def _build(env: DrafterEnv, draft: str | None = None, vocab: int | None = None, draft_weights: str | None = None,
           draft_backend: str | None = None, tree_nodes: int = 0, tree_branch: int = 2,
           tree_width: int = 4, sized: bool = False, guess: int | None = None,
           guess_from: str = "context", guess_sync: bool = True) -> DraftModelDrafter:
    """vocab=N: the draft's output layer computes only the N lowest token ids (the tokenizer's most frequent:
    BPE ids follow merge order) and the special tokens; the draft never proposes the others; 0: every id.
    Default: DEFAULT_VOCAB (65536) where the draft runs on the torch runner with a larger vocabulary, else
    every id. On the 0.5B draft the output layer is 151,936 x 896, a fifth of its pass (15.7 vs 12.7 ms with
    65536 ids). Lossless either way: the target verifies every token (an explicit N needs the torch runner).
    draft_weights= / draft_backend=: run the draft differently from the target. Default for a zoo GGUF draft on
    the torch runner with automatic weights: int4-all (4-bit everywhere, 21 vs 38 ms a token for the 0.5B here,
    whose GGUF is mostly 5-bit).
    tree_nodes=N (> 0): draft a tree of N nodes instead of a chain (EAGLE-2-style: tree_branch candidates per
    node, the tree_width best by path probability kept per depth; the policy's k caps the depth; needs the
    target and draft on runners that take tree masks: torch). sized=true: each round's tree cut to the nodes whose
    calibrated path probability pays for their row on the target's measured pass costs (tree_nodes the cap;
    specdec.budget.TreeSizer, as ADED's sized trees), and deepened only while the next draft pass is expected to
    pay on the draft's own measured pass costs.
    guess=N (chains): each draft pass also runs up to N tokens copied from the context (the latest earlier
    occurrence of the last 3, 2 or 1 tokens) after the drafted token; where the draft's own next tokens are those,
    their rows stand in for the passes that would have made them. The draft is the same either way (the torch
    runner's rows do not depend on the rows beside them). Default: DEFAULT_GUESS (4) for chains on the torch
    runner, else 0. guess_from=store: where the context has no 2-token match, the bundled ADED store's most likely
    tri-gram chain instead (the guesses only; nothing is learned). guess_sync=false: the round's first draft pass
    (over the tokens the target committed since the last round) carries no guesses (true: it does)."""
    name = draft or env.draft
    if not name:
        raise InputError("the draft-model drafter needs a draft model: pass draft=... (CLI: --draft NAME)")
    check_options(draft, vocab, draft_weights, draft_backend, tree_nodes, tree_branch, tree_width, sized, guess,
                  guess_from, guess_sync)
    if draft_weights is None and env.engine is not None and env.engine.weights == "auto":
        from specdec.runners import resolve_backend, resolve_weights

        eng = env.engine if draft_backend is None else replace(env.engine, backend=draft_backend)
        if resolve_backend(eng, name) == "torch" and resolve_weights(eng, name) == "int4":
            draft_weights = "int4-all"  # a draft's rounding only costs acceptance: 4-bit everywhere by default
    over = {k: v for k, v in (("weights", draft_weights), ("backend", draft_backend)) if v is not None}
    runner, tokenizer = env.load_model(name, **over) if over else env.load_model(name)
    check_same_vocabulary(env.target_tokenizer, tokenizer)
    default = vocab is None
    if default:  # the default cut, where it applies
        vocab = DEFAULT_VOCAB if runner.name == "torch" and runner.vocab_size > DEFAULT_VOCAB else 0
    if vocab:
        special = [int(i) for i in getattr(tokenizer, "all_special_ids", [])]
        added = [int(i) for i in getattr(tokenizer, "added_tokens_decoder", {})]
        try:
            runner.restrict_vocab(sorted(set(range(min(vocab, runner.vocab_size))) | set(special) | set(added)))
        except InputError:
            if not default:  # asked for: say why; the default cut only goes where the runner can make it
                raise
    costs = draft_costs = None
    if sized:
        from specdec.runners.costs import pass_costs

        costs = pass_costs(env.target_runner, env.cache_dir)  # measured once per machine and runner, cached
        draft_costs = pass_costs(runner, env.cache_dir)  # the draft's own passes: what each depth costs
    if guess is None:  # the default, where it applies: multi-row draft passes that cost little more than one row
        guess = DEFAULT_GUESS if runner.name == "torch" and not tree_nodes else 0
    store = None
    if guess and guess_from == "store":
        from specdec.drafters.aded.drafter import bundled_store
        from specdec.drafters.aded.store import TrigramStore

        found = bundled_store(env.target_tokenizer) if env.target_tokenizer is not None else None
        store = TrigramStore.load(found) if found is not None else None
    return DraftModelDrafter(runner, env.target_runner.vocab_size, tree_nodes, tree_branch, tree_width, costs,
                             draft_costs, guess, store, guess_sync)
