"""Prompt templates with a mask where the answer goes, and verbalizers (label -> answer words).

The default multiple-choice template is ModernBERT-Large-Instruct's (model card, answerdotai)::

    You will be given a question and options. Select the right answer.
    QUESTION: <question>
    CHOICES:
    - A: <choice A>
    - B: <choice B>
    ...
    ANSWER: [unused0] [MASK]

`[unused0]` is kept only where the tokenizer encodes it as one token (ModernBERT does; BERT's
WordPiece splits it into pieces, so it is dropped there). The mask is the tokenizer's own mask token
(`[MASK]`, `<mask>`, ...), repeated once per answer token when a verbalizer is several tokens long.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Mapping, Sequence

from specdec.errors import InputError, SpecDecError

LETTERS = tuple(string.ascii_uppercase)


class VerbalizerError(SpecDecError, ValueError):
    """A verbalizer word cannot be represented by the tokenizer (unknown, empty, too long, ambiguous)."""


@dataclass(frozen=True)
class PromptTemplate:
    """`body` may use {text} and {choices}; `choice_line` may use {letter} and {choice}."""

    instruction: str = "You will be given a question and options. Select the right answer."
    body: str = "QUESTION: {text}\nCHOICES:\n{choices}"
    choice_line: str = "- {letter}: {choice}"
    answer_prefix: str = "ANSWER:"
    answer_marker: str | None = "[unused0]"
    example_separator: str = "\n\n"

    def marker_for(self, tokenizer) -> str | None:
        """The answer marker where the tokenizer has it as a single known token, else None."""
        if not self.answer_marker:
            return None
        ids = tokenizer(self.answer_marker, add_special_tokens=False)["input_ids"]
        unk = getattr(tokenizer, "unk_token_id", None)
        return self.answer_marker if len(ids) == 1 and ids[0] != unk else None

    def _one(self, tokenizer, text: str, choices: Sequence[str] | None, answer: str) -> str:
        lines = ""
        if choices is not None:
            lines = "\n".join(self.choice_line.format(letter=LETTERS[i], choice=c) for i, c in enumerate(choices))
        body = self.body.format(text=text, choices=lines)
        marker = self.marker_for(tokenizer)
        slot = self.answer_prefix + " " + (marker + " " if marker else "") + answer
        return body + "\n" + slot

    def render(self, tokenizer, text: str, choices: Sequence[str] | None = None, *, n_masks: int = 1,
               examples: Sequence["Example"] = ()) -> str:
        """The prompt with `n_masks` mask tokens in the answer slot, after the in-context `examples`
        (each shown with its answer word in place of the mask)."""
        if n_masks < 1:
            raise InputError(f"n_masks must be >= 1, got {n_masks}")
        if choices is not None and len(choices) > len(LETTERS):
            raise InputError(f"at most {len(LETTERS)} choices, got {len(choices)}")
        parts = [self._one(tokenizer, ex.text, ex.choices, ex.answer) for ex in examples]
        parts.append(self._one(tokenizer, text, choices, tokenizer.mask_token * n_masks))
        head = self.instruction + "\n" if self.instruction else ""
        return head + self.example_separator.join(parts)


@dataclass(frozen=True)
class Example:
    """An in-context example: its text, its choices (multiple choice) or None, and the answer word."""

    text: str
    answer: str
    choices: tuple[str, ...] | None = None


MODERNBERT_INSTRUCT = PromptTemplate()
SENTIMENT = PromptTemplate(
    instruction="You will be given a sentence. Select its sentiment.",
    body="SENTENCE: {text}\nCHOICES:\n{choices}",
    choice_line="- {choice}",
)
TEMPLATES: dict[str, PromptTemplate] = {"modernbert-instruct": MODERNBERT_INSTRUCT, "sentiment": SENTIMENT}


def get_template(name_or_template: str | PromptTemplate | None) -> PromptTemplate:
    if name_or_template is None:
        return MODERNBERT_INSTRUCT
    if isinstance(name_or_template, PromptTemplate):
        return name_or_template
    if name_or_template not in TEMPLATES:
        raise InputError(f"unknown template {name_or_template!r}; known: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[name_or_template]


@dataclass(frozen=True)
class Verbalizer:
    """Each label's answer words; a label's probability sums over its words (e.g. "A" and " A")."""

    labels: tuple[str, ...]
    words: tuple[tuple[str, ...], ...]

    @staticmethod
    def of(spec: Mapping[str, Sequence[str] | str] | Sequence[str]) -> "Verbalizer":
        """{"pos": ["great", " great"], ...}; or a list of labels, each its own word (with and
        without a leading space)."""
        if isinstance(spec, Mapping):
            labels = tuple(spec)
            words = tuple((w,) if isinstance(w, str) else tuple(w) for w in spec.values())
        else:
            labels = tuple(spec)
            words = tuple((lab, " " + lab) for lab in labels)
        if len(labels) < 2:
            raise InputError(f"a classifier needs at least 2 labels, got {list(labels)}")
        for lab, ws in zip(labels, words):
            if not ws:
                raise VerbalizerError(f"label {lab!r} has no verbalizer words")
        return Verbalizer(labels=labels, words=words)

    @staticmethod
    def letters(n: int) -> "Verbalizer":
        return Verbalizer.of({LETTERS[i]: (LETTERS[i], " " + LETTERS[i]) for i in range(n)})

    def encode(self, tokenizer, max_tokens: int = 8) -> list[list[tuple[int, ...]]]:
        """Per label, its distinct token-id sequences. Raises VerbalizerError where a word is empty,
        holds an unknown / special token, is longer than `max_tokens`, or is shared by two labels."""
        unk = getattr(tokenizer, "unk_token_id", None)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        owner: dict[tuple[int, ...], str] = {}
        out: list[list[tuple[int, ...]]] = []
        for lab, ws in zip(self.labels, self.words):
            seqs: list[tuple[int, ...]] = []
            for w in ws:
                ids = tuple(tokenizer(w, add_special_tokens=False)["input_ids"])
                what = f"verbalizer {w!r} of label {lab!r}"
                if not ids:
                    raise VerbalizerError(f"{what} encodes to no tokens: use a non-empty word")
                if unk is not None and unk in ids:
                    raise VerbalizerError(
                        f"{what} cannot be represented: the tokenizer maps it to its unknown token "
                        f"{tokenizer.unk_token!r}; pick a word in the vocabulary")
                if special & set(ids):
                    raise VerbalizerError(f"{what} contains a special token {tokenizer.convert_ids_to_tokens(list(ids))}")
                if len(ids) > max_tokens:
                    raise VerbalizerError(
                        f"{what} is {len(ids)} tokens long, more than max_tokens={max_tokens}: use a shorter word")
                if ids in owner and owner[ids] != lab:
                    raise VerbalizerError(
                        f"{what} encodes to the same tokens {list(ids)} as a word of label {owner[ids]!r}: "
                        "labels must be distinguishable")
                owner[ids] = lab
                if ids not in seqs:  # "A" and " A" may be the same token (uncased WordPiece): count it once
                    seqs.append(ids)
            out.append(seqs)
        return out
