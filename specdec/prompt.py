"""Prompts: what a prompt may be and its token ids (raw text, or the chat template's turns). One function for the
API, bench, eval, SpecDec++ data building and ADED distillation."""
from __future__ import annotations

from typing import Sequence

from specdec.errors import InputError

Prompt = str | Sequence[dict]


def check_prompt(prompt) -> None:
    """A prompt is text (str) or a list of {"role": str, "content": str} messages; anything else is one
    InputError (before a tokenizer or chat template sees it)."""
    if isinstance(prompt, str):
        return
    if isinstance(prompt, (bytes, bytearray)):
        raise InputError("the prompt is bytes: decode it to text (str) first")
    if not isinstance(prompt, (list, tuple)):
        raise InputError(f"the prompt must be text (str) or a list of {{'role', 'content'}} messages, "
                         f"got {type(prompt).__name__}")
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise InputError(f"message {i} of the prompt must be a dict with a 'role' and a 'content' string, "
                             f"got {m!r}"[:300])


def encode_prompt(tokenizer, prompt: Prompt, chat: bool | None = None) -> list[int]:
    """The prompt's token ids: raw text with the tokenizer's special tokens, or (chat: default when the
    tokenizer has a template) the turns through the chat template with the generation prompt."""
    check_prompt(prompt)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("empty prompt: give some text to continue")
        use_chat = has_template if chat is None else chat
        if not use_chat:
            return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
        prompt = [{"role": "user", "content": prompt}]
    if not prompt:
        raise InputError("empty message list")
    if not has_template:
        raise InputError("this model's tokenizer has no chat template; pass plain text with chat=False (--no-chat)")
    ids = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return list(ids)
