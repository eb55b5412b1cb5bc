"""The torch runner on any device: every tensor of a pass is made on the runner's device (checked on the CPU by
making the default device `meta`: a tensor created without the runner's device lands there and the pass fails),
`--device` checked before any load, and on CUDA (skipped without one) greedy speculation == plain decoding."""
from __future__ import annotations

import pytest
import torch

from evalhelpers import byte_tokenizer, tiny_model
from specdec.config import EngineConfig, RunConfig, SpecConfig, StopConfig
from specdec.errors import InputError
from specdec.runners.torch_runner import TorchRunner


def test_every_tensor_of_a_pass_is_made_on_the_runners_device():
    tok = byte_tokenizer()
    r = TorchRunner(tiny_model(len(tok)), max_context=64)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    tree, depths, two = torch.tensor([[1, 0], [1, 1]], dtype=torch.bool), torch.tensor([0, 1]), torch.tensor([[7, 8]])
    r.prefill(ids[:, :4])
    with torch.device("meta"):  # what the runner makes without device= would be a meta tensor: the pass would fail
        chain, _ = r.forward(ids[:, 4:])
        r.commit(1)
        tree_out, _ = r.forward(two, tree_mask=tree, depths=depths)
        r.commit(1, keep=[1])
    assert chain.device.type == "cpu" and tree_out.shape[:2] == (1, 2) and r.length == 6


def test_sampling_draws_on_the_generators_device():
    from specdec.sampling import sample

    g = torch.Generator().manual_seed(0)
    probs = torch.tensor([[0.0, 1.0, 0.0]], device="meta")  # stands for a CUDA runner's probabilities
    with pytest.raises(NotImplementedError):  # moved to the generator's (CPU) device: meta has no data to copy
        sample(probs, g)
    assert sample(torch.tensor([[0.0, 1.0, 0.0]]), g).tolist() == [1]


@pytest.mark.parametrize("device, phrase", [("gpu", "--device must be cpu, cuda or cuda:N"), ("cuda:x", "--device"),
                                            ("", "--device")])
def test_bad_device_names_are_refused(device, phrase):
    with pytest.raises(InputError, match=phrase):
        EngineConfig(device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line_before_any_load():
    from specdec.spec_check import check_run

    with pytest.raises(InputError, match="no CUDA device"):
        check_run(RunConfig(target="qwen2.5-coder-1.5b-instruct", engine=EngineConfig(device="cuda")))


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize("drafter", ["prompt-lookup", "aded"])
def test_on_cuda_greedy_speculation_equals_plain_decoding(drafter):
    from specdec.api import SpecDecoder

    tok = byte_tokenizer()
    model = tiny_model(len(tok)).to("cuda")
    dec = SpecDecoder(model, tok, engine=EngineConfig(device="cuda", dtype="float32"))
    assert dec.target.device.type == "cuda"
    prompt = torch.tensor([tok("abc abc abc abc abc")["input_ids"]])
    stop = StopConfig(max_new_tokens=24)
    plain = dec.generate_ids(prompt, stop=stop, spec=SpecConfig(drafter=None))
    spec = dec.generate_ids(prompt, stop=stop, spec=SpecConfig(drafter=drafter, drafter_options=(
        {"store": "empty"} if drafter == "aded" else {})))
    assert spec == plain
