"""Shared fixtures: tiny random causal LMs built from configs, and a tiny word-level tokenizer."""
from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

# Tiny models need no thread pool; one thread keeps test runs from oversubscribing a 2-core machine.
torch.set_num_threads(1)

VOCAB = 64
WORDS = [f"w{i}" for i in range(VOCAB - 3)]


def make_tokenizer(vocab: int = VOCAB) -> PreTrainedTokenizerFast:
    words = ["<unk>", "<eos>", "<pad>"] + [f"w{i}" for i in range(vocab - 3)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<pad>")
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return fast


def make_model(kind: str = "qwen2", seed: int = 0, vocab: int = VOCAB, layers: int = 2, sharp: float = 1.0):
    """A tiny random model. `sharp` scales the output layer: larger = peakier distributions (more agreement)."""
    torch.manual_seed(seed)
    Cfg, Model = (Qwen2Config, Qwen2ForCausalLM) if kind == "qwen2" else (LlamaConfig, LlamaForCausalLM)
    cfg = Cfg(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
              eos_token_id=1, bos_token_id=None, pad_token_id=2)
    model = Model(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharp)
    return model


@pytest.fixture(scope="session", autouse=True)
def costs_cache_of_this_run(tmp_path_factory):
    """Runners' measured pass costs go to a folder of this test run, not the user's model cache: tests build
    GGUF files with new names each run (each would leave a costs file behind: 24 were found there), and a
    cost measured on a machine busy with tests is not one a later real run should read."""
    import specdec.runners.costs as costs

    root = tmp_path_factory.mktemp("costs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(costs, "cache_file", lambda runner, cache_dir=None, _f=costs.cache_file: root / _f(runner).name)
        yield root


@pytest.fixture(scope="session")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="session")
def target_model():
    return make_model("qwen2", seed=0, layers=2, sharp=8.0)


@pytest.fixture(scope="session")
def draft_model(target_model):
    """A draft that agrees with the target often but not always: the target with noise added."""
    draft = make_model("qwen2", seed=1, layers=2, sharp=8.0)
    with torch.no_grad():
        for pd, pt in zip(draft.parameters(), target_model.parameters()):
            pd.copy_(pt + 0.05 * torch.randn_like(pt))
    return draft


def random_prompts(n: int, seed: int = 0, lo: int = 2, hi: int = 12) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        T = int(torch.randint(lo, hi, (1,), generator=g))
        out.append(torch.randint(3, VOCAB, (1, T), generator=g))
    return out


@pytest.fixture
def vllm_venv(tmp_path, monkeypatch):
    """A stand-in .venv-vllm (just bin/python) named by $SPECDEC_VLLM_VENV: vLLM's client finds a venv; the tests
    replace its worker."""
    from specdec.backends import vllm_client

    v = tmp_path / "venv-vllm"
    (v / "bin").mkdir(parents=True)
    (v / "bin" / "python").write_text("")
    monkeypatch.setenv(vllm_client.VENV_ENV, str(v))
    return v
