"""The bf16 prefill path (runners/torch_runner.py with weights/quant.prefill_linear): under SPECDEC_QKERNEL=auto
(the default) on CPUs with AMX-BF16 a prompt chunk of BF16_PREFILL_MIN_ROWS+ rows runs its linears through
qmatmul_bf16, its cache stays close to the int8 path's, shorter chunks and decode/verify passes never take it, greedy
speculation still equals plain decoding after it; int8 and vnni keep prefills on the int8 kernel."""
from __future__ import annotations

import pytest
import torch

from spec_helpers import make_model
from specdec.runners.torch_runner import BF16_PREFILL_MIN_ROWS, ROW_ATTENTION_MAX_ROWS, TorchRunner
from specdec.weights import kernels, quant


def _runner() -> TorchRunner:
    model = make_model("qwen2", seed=3, layers=2, sharp=4.0)
    model = quant.quantize_model(model, quant.quantize_from_weights(model, "int4"), kernel="vnni")
    quant.fuse_projections(model)
    quant.compute_in_float32(model)
    return TorchRunner(model, max_context=128)


@pytest.mark.parametrize("forced", ["int8", "vnni"])
def test_off_under_the_int8_modes(monkeypatch, forced):
    if not kernels.cpu_supported():
        pytest.skip("this CPU has no AVX512-VNNI for specdec's qmatmul kernel")
    monkeypatch.setenv("SPECDEC_QKERNEL", forced)
    assert not kernels.bf16_prefill_in_effect() and not _runner().core.bf16_prefill


@pytest.fixture
def bf16_calls(monkeypatch):
    if not kernels.cpu_supported():
        pytest.skip("this CPU has no AVX512-VNNI for specdec's qmatmul kernel")
    monkeypatch.setenv("SPECDEC_QKERNEL", "auto")
    ext = kernels.load()
    if not (kernels.bf16_prefill_in_effect() and ext.bf16_prefill_available()):
        pytest.skip("no bf16 prefill here (a CPU or OS without AMX-BF16)")
    calls = []
    real = ext.qmatmul_bf16
    monkeypatch.setattr(ext, "qmatmul_bf16", lambda x, *a: calls.append(x.shape[0]) or real(x, *a))
    return calls


def test_long_prefill_chunks_take_the_bf16_path_and_nothing_else_does(bf16_calls):
    r = _runner()
    assert r.core.bf16_prefill
    ids = torch.randint(3, 60, (1, 100), generator=torch.Generator().manual_seed(0))
    r.prefill(ids[:, :ROW_ATTENTION_MAX_ROWS])  # a chunk the one-call layer path takes: not bf16
    r.reset()
    r.prefill(ids[:, :BF16_PREFILL_MIN_ROWS - 1])  # below the bf16 crossover: the int8 path
    assert bf16_calls == []
    r.forward(ids[:, 40:60])  # decode / verify passes: never bf16, whatever their length
    r.forward(ids[:, 40:80])
    assert bf16_calls == []
    r.reset()
    r.prefill(ids[:, :70], chunk=64)  # one 64-row chunk (bf16: 4 linears a layer, fused) and a 6-row chunk
    assert bf16_calls == [64] * 4 * 2


def test_bf16_prefill_cache_is_close_to_the_int8_paths(bf16_calls):
    r = _runner()
    ids = torch.randint(3, 60, (1, 60), generator=torch.Generator().manual_seed(1))
    out = {}
    for bf16 in (True, False):
        r.core.bf16_prefill = bf16
        r.reset()
        r.prefill(ids[:, :59])
        logits, _ = r.forward(ids[:, 59:])
        out[bf16] = (logits[0, -1], r.k_cache[:, :, :, :59].clone())
    assert bf16_calls  # the first round took the bf16 path
    (lb, kb), (li, ki) = out[True], out[False]
    assert not torch.equal(kb, ki)  # really another path
    assert (kb - ki).abs().max() < 0.02 * ki.abs().max()
    assert (lb - li).abs().max() < 0.02 * li.abs().max()
    assert lb.argmax() == li.argmax()


def test_greedy_speculation_equals_plain_after_a_bf16_prefill(bf16_calls):
    from spec_helpers import make_tokenizer
    from specdec.api import SpecDecoder
    from specdec.config import SpecConfig, StopConfig

    dec = SpecDecoder(_runner(), make_tokenizer())
    stop = StopConfig(max_new_tokens=16)
    g = torch.Generator().manual_seed(4)
    prompts = [torch.randint(3, 60, (1, n), generator=g) for n in (50, 70)]
    for p in prompts:
        plain = [t for r in dec.stream_ids(p, stop=stop, spec=SpecConfig()) for t in r.tokens]
        for drafter, opts in (("prompt-lookup", {}), ("aded", {"store": "empty"})):
            spec = SpecConfig(drafter=drafter, k=4, guard=False, drafter_options=opts)
            out = [t for r in dec.stream_ids(p, stop=stop, spec=spec) for t in r.tokens]
            assert out == plain, (drafter, p.shape)
    assert len(bf16_calls) >= 2 * 4 * 2 * 3  # every prefill of both prompts took the bf16 path
