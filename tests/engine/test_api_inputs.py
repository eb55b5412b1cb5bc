"""Bad input through the public API -> specdec.errors.InputError with a message that says what to do;
plus the happy paths those checks sit next to (chat template, stream)."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import make_tokenizer  # isort: skip
from specdec.api import SpecDecoder
from specdec.config import EngineConfig, SpecConfig, StopConfig
from specdec.errors import InputError, SpecDecError, UnknownNameError


@pytest.fixture(scope="module")
def dec(target_model, tokenizer):
    return SpecDecoder(target_model, tokenizer, engine=EngineConfig(max_context=32))


@pytest.fixture(scope="module")
def no_template(target_model):
    tok = make_tokenizer()
    tok.chat_template = None
    return SpecDecoder(target_model, tok)


@pytest.mark.parametrize("prompt", ["", "   ", " \n\t "])
def test_empty_or_whitespace_prompt(dec, prompt):
    with pytest.raises(InputError, match="empty prompt"):
        dec.generate(prompt, max_new_tokens=2)
    with pytest.raises(InputError, match="empty prompt"):
        dec.generate(prompt, chat=False, max_new_tokens=2)


def test_empty_message_list(dec):
    with pytest.raises(InputError, match="empty message list"):
        dec.generate([], max_new_tokens=2)


def test_empty_token_ids(dec):
    with pytest.raises(InputError, match="empty prompt"):
        list(dec.stream_ids(torch.zeros(1, 0, dtype=torch.long)))


def test_context_overflow(dec):
    prompt = " ".join(f"w{i}" for i in range(10))  # 10 tokens
    with pytest.raises(InputError) as e:
        dec.generate(prompt, chat=False, max_new_tokens=23)
    msg = str(e.value)
    assert "context overflow" in msg and "10 tokens" in msg and "23" in msg and "32" in msg
    assert "max_new_tokens" in msg  # says what to change
    assert len(dec.generate(prompt, chat=False, max_new_tokens=22).token_ids) == 22  # exactly fits


def test_context_overflow_with_speculation(target_model, tokenizer):
    d = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="prompt-lookup"), engine=EngineConfig(max_context=16))
    with pytest.raises(InputError, match="context overflow"):
        d.generate("w1 w2 w3 w1 w2 w3", chat=False, max_new_tokens=11)
    assert len(d.generate("w1 w2 w3 w1 w2 w3", chat=False, max_new_tokens=10, eos_token_ids=()).token_ids) == 10


def test_messages_without_a_chat_template(no_template):
    with pytest.raises(InputError, match="no chat template"):
        no_template.generate([{"role": "user", "content": "w1 w2"}], max_new_tokens=2)
    with pytest.raises(InputError, match="chat=False"):
        no_template.generate("w1 w2", chat=True, max_new_tokens=2)
    # plain text is fine: chat defaults to off without a template
    assert len(no_template.generate("w1 w2", max_new_tokens=3, eos_token_ids=()).token_ids) == 3


def test_messages_use_the_chat_template(dec, tokenizer):
    ids = dec.encode([{"role": "user", "content": "w4 w5"}, {"role": "assistant", "content": "w6"}])
    assert ids.tolist() == [tokenizer("w4 w5 w6", add_special_tokens=False)["input_ids"]]
    assert dec.encode("w4 w5").tolist() == dec.encode([{"role": "user", "content": "w4 w5"}]).tolist()
    assert dec.encode("w4 w5", chat=False).tolist() == [[tokenizer.get_vocab()["w4"], tokenizer.get_vocab()["w5"]]]


def test_invalid_settings_are_input_errors(dec):
    with pytest.raises(InputError, match="max_new_tokens"):
        dec.generate("w1", max_new_tokens=0)
    with pytest.raises(InputError, match="temperature"):
        dec.generate("w1", temperature=-1.0)
    with pytest.raises(InputError, match="top_p"):
        dec.generate("w1", top_p=0.0)
    with pytest.raises(InputError, match="k must be"):
        dec.generate("w1", drafter="prompt-lookup", k=0)
    with pytest.raises(TypeError, match="unknown option 'bogus'"):
        dec.generate("w1", bogus=1)


def test_unknown_drafter_fails_early(target_model, tokenizer):
    with pytest.raises(UnknownNameError, match="known: .*draft-model.*prompt-lookup"):
        SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="nope"))


def test_errors_share_one_base_class():
    assert issubclass(InputError, SpecDecError) and issubclass(InputError, ValueError)
    assert issubclass(UnknownNameError, SpecDecError)


def test_stream_pieces_add_up_to_generate(target_model, tokenizer):
    d = SpecDecoder(target_model, tokenizer, spec=SpecConfig(drafter="prompt-lookup", k=3))
    prompt = "w1 w2 w3 w1 w2 w3 w1"
    res = d.generate(prompt, chat=False, max_new_tokens=16)
    pieces = list(d.stream(prompt, chat=False, max_new_tokens=16))
    assert [t for p in pieces for t in p.token_ids] == res.token_ids
    assert "".join(p.text for p in pieces) == res.text
    assert {p.origin for p in pieces} <= {"draft", "target"}
    assert sum(len(p.token_ids) for p in pieces if p.origin == "draft") == res.stats.accepted > 0
    stop = StopConfig(max_new_tokens=16)
    assert res.token_ids == [t for r in d.stream_ids(torch.tensor([res.prompt_ids]), stop=stop) for t in r.tokens]


@pytest.mark.parametrize("prompt,phrase", [
    (123, r"must be text \(str\) or a list"), (b"hi", "is bytes: decode it"), (None, "must be text"),
    ([{"role": "user"}], "message 0 of the prompt must be a dict with a 'role' and a 'content'"),
    (["w1"], "message 0"),
])
def test_a_prompt_of_the_wrong_type_is_an_input_error(dec, prompt, phrase):
    with pytest.raises(InputError, match=phrase):
        dec.generate(prompt, max_new_tokens=2)
    with pytest.raises(InputError, match=phrase):
        list(dec.stream(prompt, max_new_tokens=2))


@pytest.mark.parametrize("opts,phrase", [
    ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
    ({"drafter": "prompt-lookup", "k": 2.5}, "k must be a whole number"),
    ({"seed": -1, "temperature": 1.0}, "seed must be >= 0"),
    ({"top_k": 1.5}, "top_k must be a whole number"),
    ({"stop_strings": [""]}, "stop strings must be a list of non-empty strings"),
    ({"drafter": "prompt-lookup", "drafter_options": {"max_ngram": "abc"}}, "expects a whole number"),
    ({"spec": "prompt-lookup"}, "spec must be a SpecConfig"),
])
def test_bad_settings_per_call_are_input_errors(dec, opts, phrase):
    with pytest.raises(InputError, match=phrase):
        dec.generate("w1", **opts)


def test_load_checks_its_arguments_before_any_model_loads(monkeypatch, target_model, draft_model, tokenizer):
    import specdec
    from spec_helpers import install_tiny_zoo

    loaded = install_tiny_zoo(monkeypatch, {"tiny-target": target_model, "tiny-draft": draft_model}, tokenizer)
    cases = [((123,), {}, InputError, "target must be a model name"),
             (("tiny-target",), {"k": 0}, InputError, "-k .* must be >= 1"),
             (("tiny-target",), {"k": 2.5}, InputError, "k must be a whole number"),
             (("tiny-target",), {"bogus": 1}, TypeError, "unknown load option 'bogus'"),
             (("tiny-target",), {"drafter": "nope"}, UnknownNameError, "unknown drafter 'nope'"),
             (("tiny-target",), {"drafter": "draft-model"}, InputError, "needs a draft model"),
             (("tiny-target", "nope"), {}, SpecDecError, "draft: no tiny model 'nope'"),
             (("tiny-target",), {"max_context": 4}, InputError, "max_context must be >= 8"),
             (("tiny-target",), {"spec": "x"}, InputError, "spec must be a SpecConfig")]
    for args, kw, err, phrase in cases:
        with pytest.raises(err, match=phrase):
            specdec.load(*args, **kw)
    assert loaded == []  # every refusal came before a model loaded
    dec = specdec.load("tiny-target", k=3, drafter="prompt-lookup", max_context=64)  # generation length: per call
    assert dec.spec.k == 3 and dec.target.max_context == 64 and loaded == ["tiny-target"]
