"""A masked LM's MLM head as a generative classifier ("It's All in The [MASK]", Clavié et al. 2025).

The prompt ends in an answer slot holding one mask per answer token; a label's score is the
probability the MLM gives its verbalizer words there (several words per label are summed). Words
several tokens long are scored jointly over several masks:

* ``joint="chain"`` (default): log p(t1 | M M ..) + log p(t2 | t1 M ..) + ... -- one extra pass per
  token after the first, filling the answer left to right (an exact chain-rule factorisation of the
  MLM's left-to-right unmasking order);
* ``joint="independent"``: the sum of the per-mask log-marginals from one pass.

Words of different token lengths are scored on prompts with different numbers of masks; their
scores are sequence log-probabilities and are compared as such. Label probabilities are a softmax over
the labels' scores, so they sum to 1 over the label set.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch

from mlm_generate.models import MLM, load_mlm
from mlm_generate.templates import Example, PromptTemplate, Verbalizer, get_template
from specdec.errors import InputError


class MLMClassifier:
    """Zero-shot / k-shot classification and multiple choice with any masked LM's MLM head."""

    def __init__(self, mlm: MLM | str = "bert-tiny-splade", template: PromptTemplate | str | None = None, *,
                 joint: str = "chain", batch_size: int = 16, max_verbalizer_tokens: int = 8,
                 max_length: int | None = None) -> None:
        if joint not in ("chain", "independent"):
            raise InputError(f"joint must be 'chain' or 'independent', got {joint!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.mlm = mlm if isinstance(mlm, MLM) else load_mlm(mlm)
        self.template = get_template(template)
        self.joint = joint
        self.batch_size = batch_size
        self.max_verbalizer_tokens = max_verbalizer_tokens
        self.max_length = min(max_length or self.mlm.max_length, self.mlm.max_length)

    @property
    def tokenizer(self):
        return self.mlm.tokenizer

    # ---------------------------------------------------------------- public API
    def score_choices(self, question: str, choices: Sequence[str],
                      examples: Sequence[Example] = ()) -> list[float]:
        """Multiple choice: the probability of each choice's letter (A, B, ...), summing to 1."""
        return self.score_choices_batch([question], [choices], examples)[0]

    def score_choices_batch(self, questions: Sequence[str], choices: Sequence[Sequence[str]],
                            examples: Sequence[Example] = ()) -> list[list[float]]:
        if len(questions) != len(choices):
            raise InputError(f"{len(questions)} questions but {len(choices)} choice lists")
        out: list[list[float] | None] = [None] * len(questions)
        by_n: dict[int, list[int]] = {}
        for i, c in enumerate(choices):
            if len(c) < 2:
                raise InputError(f"question {i} has {len(c)} choices; at least 2 are needed")
            by_n.setdefault(len(c), []).append(i)
        for n, idx in by_n.items():
            probs = self.predict_proba([questions[i] for i in idx], Verbalizer.letters(n),
                                       choices=[tuple(choices[i]) for i in idx], examples=examples).exp()
            for j, i in enumerate(idx):
                out[i] = probs[j].tolist()
        return out  # type: ignore[return-value]

    def classify(self, text: str, labels: Verbalizer | Mapping[str, Sequence[str]] | Sequence[str],
                 examples: Sequence[tuple[str, str]] | Sequence[Example] = (), *,
                 show_choices: bool = True) -> dict[str, float]:
        """Label set classification of one text: {label: probability}. `labels` is a list of label
        words or {label: [words]}; `examples` are (text, label) pairs shown in context."""
        verb = labels if isinstance(labels, Verbalizer) else Verbalizer.of(labels)
        probs = self.predict_proba([text], verb, examples=self.examples_for(verb, examples),
                                   show_choices=show_choices).exp()[0]
        return dict(zip(verb.labels, probs.tolist()))

    def examples_for(self, verb: Verbalizer, pairs: Sequence[tuple[str, str]] | Sequence[Example]) -> list[Example]:
        """(text, label) pairs -> in-context Examples answered with each label's first word."""
        out = []
        for p in pairs:
            if isinstance(p, Example):
                out.append(p)
                continue
            text, label = p
            if label not in verb.labels:
                raise InputError(f"example label {label!r} is not one of {list(verb.labels)}")
            word = verb.words[verb.labels.index(label)][0].strip()
            out.append(Example(text=text, answer=word, choices=self._label_choices(verb)))
        return out

    @staticmethod
    def _label_choices(verb: Verbalizer) -> tuple[str, ...]:
        return tuple(ws[0].strip() for ws in verb.words)

    @torch.no_grad()
    def predict_proba(self, texts: Sequence[str], verbalizer: Verbalizer, *,
                      choices: Sequence[Sequence[str]] | None = None, examples: Sequence[Example] = (),
                      show_choices: bool = True) -> torch.Tensor:
        """(B, L) log-probabilities over the verbalizer's labels (log_softmax over labels).
        Multiple choice: pass each text's `choices`; label sets: the label words are listed as the
        choices when `show_choices`."""
        if isinstance(texts, str):
            raise InputError("texts must be a list of strings")
        if choices is not None and len(choices) != len(texts):
            raise InputError(f"{len(texts)} texts but {len(choices)} choice lists")
        seqs = verbalizer.encode(self.tokenizer, self.max_verbalizer_tokens)
        flat = sorted({s for per_label in seqs for s in per_label}, key=lambda s: (len(s), s))
        col = {s: j for j, s in enumerate(flat)}
        scores = torch.full((len(texts), len(flat)), float("-inf"))
        label_choices = self._label_choices(verbalizer) if show_choices else None
        for length in sorted({len(s) for s in flat}):
            group = [s for s in flat if len(s) == length]
            prompts = [self.template.render(self.tokenizer, t, choices[i] if choices is not None else label_choices,
                                            n_masks=length, examples=examples) for i, t in enumerate(texts)]
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start:start + self.batch_size]
                sc = self._score_length(chunk, torch.tensor(group, dtype=torch.long))
                scores[start:start + len(chunk), [col[s] for s in group]] = sc
        per_label = torch.stack([torch.logsumexp(scores[:, [col[s] for s in ss]], dim=1) for ss in seqs], dim=1)
        return torch.log_softmax(per_label, dim=1)

    # ---------------------------------------------------------------- internals
    def encode_prompts(self, prompts: Sequence[str], n_masks: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids (B, T), attention mask, and (B, n_masks) positions of the answer masks.
        Over-long prompts lose their beginning (the answer slot is at the end)."""
        tok = self.tokenizer
        side = getattr(tok, "truncation_side", "right")
        tok.truncation_side = "left"
        try:
            enc = tok(list(prompts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        finally:
            tok.truncation_side = side
        ids, attn = enc["input_ids"], enc["attention_mask"]
        is_mask = ids == self.mlm.mask_id
        counts = is_mask.sum(1)
        if not bool((counts == n_masks).all()):
            bad = int((counts != n_masks).nonzero()[0, 0])
            raise InputError(
                f"prompt {bad} has {int(counts[bad])} mask tokens after tokenization, expected {n_masks}: "
                f"the text must not contain {tok.mask_token!r}, and the template must keep the answer slot")
        pos = is_mask.nonzero()[:, 1].view(len(prompts), n_masks)
        return ids, attn, pos

    def _score_length(self, prompts: Sequence[str], seqs: torch.Tensor) -> torch.Tensor:
        """(B, S) log p(seq) for S candidate answer sequences of one length L, on prompts with L masks."""
        n_seq, length = seqs.shape
        ids, attn, pos = self.encode_prompts(prompts, length)
        rows = torch.arange(ids.shape[0])
        where = torch.zeros_like(ids, dtype=torch.bool)
        where[rows[:, None], pos] = True
        lp = torch.log_softmax(self.mlm.logits_at(ids, attn, where).float(), -1).view(len(prompts), length, -1)
        if length == 1 or self.joint == "independent":
            return lp.gather(2, seqs.T[None].expand(len(prompts), -1, -1)).sum(1)  # (B, L, S) -> (B, S)
        score = lp[:, 0, seqs[:, 0]]  # (B, S)
        b = ids.shape[0]
        rep_ids = ids.repeat_interleave(n_seq, 0)
        rep_attn = attn.repeat_interleave(n_seq, 0)
        rep_pos = pos.repeat_interleave(n_seq, 0)
        rep_seq = seqs.repeat(b, 1)  # row r = (text r // S, seq r % S)
        r = torch.arange(rep_ids.shape[0])
        for i in range(1, length):
            rep_ids[r, rep_pos[:, i - 1]] = rep_seq[:, i - 1]
            w = torch.zeros_like(rep_ids, dtype=torch.bool)
            w[r, rep_pos[:, i]] = True
            lpi = torch.log_softmax(self.mlm.logits_at(rep_ids, rep_attn, w).float(), -1)
            score = score + lpi[r, rep_seq[:, i]].view(b, n_seq)
        return score
