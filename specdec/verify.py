"""The one verification used by every drafter (chains and trees, greedy and sampling).

Letters follow the speculative-sampling papers (Leviathan et al. 2023; Chen et al. 2023):
    p = the target model's distribution (after temperature / top-k / top-p),
    q = the draft's distribution the drafted token was sampled from (one-hot for deterministic drafters).

Glossary (as in vLLM's rejection sampler):
    accepted token  - a drafted token the target agrees with; it is committed as is.
    recovered token - sampled by the target where a drafted token was rejected: from norm(max(0, p - q))
                      (greedy: the target's argmax). It replaces the rejected token and ends the round.
    bonus token     - when every drafted token on the path was accepted, one more token comes free from
                      the target's distribution after the last accepted token.
    So a round always commits num_accepted + 1 tokens.

Worked examples (greedy, chain):
    draft  = [a, b, c]       target argmax after [ctx, ctx+a, ctx+a+b, ctx+a+b+c] = [a, b, x, y]
    -> accepted [a, b], recovered x            tokens = [a, b, x], num_accepted = 2, bonus = False
    draft  = [a, b]          target argmax = [a, b, z]
    -> accepted [a, b], bonus z                 tokens = [a, b, z], num_accepted = 2, bonus = True
    draft  = []              target argmax = [z]
    -> plain decoding                           tokens = [z], num_accepted = 0, bonus = True

Sampling: at node u with candidate children x_1..x_m (a chain has m = 1), the target's residual starts
at r = p_u. Child x_j is accepted with probability min(1, r(x_j) / q_j(x_j)); if it is rejected,
r <- norm(max(0, r - q_j)) and the next child is tried (SpecInfer's multi-draft rejection sampling).
If all children are rejected, the recovered token is sampled from r. The output is distributed exactly
as sampling from p, whatever q is.
"""
from __future__ import annotations

import torch

from specdec.config import SamplingConfig
from specdec.drafters.base import Draft, DraftTree, VerifyResult
from specdec.sampling import process_logits, sample


def verify(
    target_logits: torch.Tensor,
    draft: Draft,
    sampling: SamplingConfig,
    generator: torch.Generator | None = None,
) -> VerifyResult:
    """Verify `draft` against the target.

    target_logits: (B, K+1, V). Row 0 is the target's prediction after the committed context; row i+1 is its
                   prediction after draft node i (for a chain: after draft tokens 0..i).
    draft:         K tokens (a chain, or a tree in topological order), with q if the drafter sampled them.
    Returns the tokens to commit (see the module docstring). Batch size 1 for now.
    """
    B, rows, V = target_logits.shape
    K = draft.length
    if B != 1:
        raise NotImplementedError("verify() handles batch size 1; batched verification is planned")
    if rows != K + 1:
        raise ValueError(f"target_logits has {rows} rows for a draft of {K} tokens (want K+1)")
    tree = draft.tree or DraftTree.chain(K)
    drafted = draft.tokens[0].tolist()  # K ints
    children: dict[int, list[int]] = {}
    for i, par in enumerate(tree.parents):
        children.setdefault(par, []).append(i)

    if sampling.greedy:
        argmax = target_logits[0].argmax(-1).tolist()  # K+1 ints
        node, path = -1, []
        while True:
            want = argmax[node + 1]
            nxt = next((c for c in children.get(node, []) if drafted[c] == want), None)
            if nxt is None:
                break
            path.append(nxt)
            node = nxt
        last = argmax[node + 1]
        bonus = not children.get(node)
    else:
        p_all = process_logits(target_logits[0], sampling)  # (K+1, V)
        node, path = -1, []
        while True:
            kids = children.get(node, [])
            r = p_all[node + 1]  # (V,) residual target distribution at this node
            chosen = None
            for c in kids:
                x = drafted[c]
                q_c = draft.q[0, c] if draft.q is not None else None  # (V,) or one-hot
                qx = float(q_c[x]) if q_c is not None else 1.0
                u = torch.rand((), generator=generator).item()
                if qx > 0 and u < min(1.0, float(r[x]) / qx):
                    chosen = c
                    break
                # rejected: r <- norm(max(0, r - q))
                if q_c is None:
                    r = r.clone()
                    r[x] = 0.0
                else:
                    r = (r - q_c.float()).clamp_min(0.0)
                s = float(r.sum())
                r = r / s if s > 0 else p_all[node + 1]  # r == q exactly: nothing left, fall back to p
            if chosen is None:
                last = int(sample(r[None], generator)[0])
                break
            path.append(chosen)
            node = chosen
        bonus = not children.get(node)

    tokens = torch.tensor([[drafted[i] for i in path] + [last]], dtype=torch.long)  # (1, A+1)
    return VerifyResult(tokens=tokens, num_accepted=len(path), draft_length=K, accepted_nodes=path, bonus=bonus)
