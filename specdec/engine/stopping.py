"""Stop conditions, applied to speculative output exactly as plain decoding applies them token by token."""
from __future__ import annotations

from typing import Callable


class StopChecker:
    """Given the generated ids so far and a batch of newly committed ids, says how many of the new ids plain
    decoding would have produced before stopping, and why.

    Plain decoding checks after every token: EOS (the EOS token is kept), then a stop string appearing in the
    decoded continuation (the token completing it is kept), then max_new_tokens.
    """

    def __init__(
        self,
        max_new_tokens: int,
        eos_ids: set[int],
        stop_strings: tuple[str, ...] = (),
        decode: Callable[[list[int]], str] | None = None,
    ) -> None:
        if stop_strings and decode is None:
            raise ValueError("stop strings need a decode function")
        self.max_new_tokens = max_new_tokens
        self.eos_ids = eos_ids
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.decode = decode

    def cut(self, generated: list[int], new: list[int]) -> tuple[int, str]:
        """Returns (number of `new` tokens to keep, stop reason or "")."""
        for i, tok in enumerate(new, start=1):
            total = len(generated) + i
            if tok in self.eos_ids:
                return i, "eos"
            if self.stop_strings:
                text = self.decode(generated + new[:i])
                # only a stop string that ends in this token's text counts as new (earlier ones stopped earlier)
                if any(s in text for s in self.stop_strings):
                    return i, "stop_string"
            if total >= self.max_new_tokens:
                return i, "max_new_tokens"
        return len(new), ""
