"""GSM8K prompts (lm-eval formats), generation through the engine with and without speculation."""
import random

import pytest

from eval import gsm8k as G
from eval.data import load_gsm8k
from eval.tasks import get_task
from specdec.errors import DataError, InputError

from evalhelpers import GSM8K_TRAIN, byte_tokenizer


def test_lm_eval_random_fewshot_sampler(data_dir):
    task = get_task("gsm8k")
    train = load_gsm8k(data_dir, "train")
    test = load_gsm8k(data_dir, "test")
    p = G.GSM8KPrompter(task, train)
    # lm-eval: one Random(1234), rnd.sample(train_docs, 5) per test doc, in order
    rnd = random.Random(1234)
    draws = [rnd.sample(GSM8K_TRAIN, 5) for _ in test]
    for item in reversed(test):  # any order of asking gives the same shots
        want = "".join(f"Question: {d['question']}\nAnswer: {d['answer']}\n\n" for d in draws[item.index])
        assert p.text(item) == want + f"Question: {item.question}\nAnswer:"


def test_cot_prompt_uses_first_train_questions(data_dir):
    task = get_task("gsm8k_cot")
    train = load_gsm8k(data_dir, "train")
    text = G.GSM8KPrompter(task, train).text(load_gsm8k(data_dir, "test")[0])
    first = GSM8K_TRAIN[0]
    assert text.startswith(f"Q: {first['question']}\nA: Tom has 1 + 3 = 4 apples. The answer is 4.\n\nQ: ")
    assert text.count("Q: ") == 9 and text.endswith("Q: Ann has 3 pens and gets 4 more. How many pens?\nA:")


def test_cot_exemplars_from_a_file(tmp_path, data_dir):
    y = tmp_path / "gsm8k-cot.yaml"
    y.write_text("fewshot_config:\n  sampler: first_n\n  samples:\n  - question: Q one?\n    target: T one. The answer is 1.\n"
                 "  - question: Q two?\n    target: T two. The answer is 2.\n", encoding="utf-8")
    task = get_task("gsm8k_cot", num_fewshot=2)
    text = G.GSM8KPrompter(task, [], fewshot_file=str(y)).text(load_gsm8k(data_dir, "test")[0])
    assert text.startswith("Q: Q one?\nA: T one. The answer is 1.\n\nQ: Q two?\nA: T two. The answer is 2.\n\nQ: Ann")
    with pytest.raises(DataError, match="missing"):
        G.read_fewshot_file(str(tmp_path / "nope.yaml"))


def test_chat_prompt_and_missing_template(data_dir):
    task = get_task("gsm8k_chat")
    item = load_gsm8k(data_dir, "test")[0]
    msgs = G.GSM8KPrompter(task).prompt(item)
    assert msgs == [{"role": "user", "content": item.question + "\n" + task.chat_instruction}]
    G.check_chat_template(byte_tokenizer(chat=True), task, "m")
    with pytest.raises(InputError, match="no chat template.*gsm8k"):
        G.check_chat_template(byte_tokenizer(chat=False), task, "m")


def test_stop_cut_like_lm_eval():
    assert G.cut_at_stop("x = 4\n#### 4\n\nQuestion: next", ("Question:", "</s>")) == "x = 4\n#### 4\n\n"


@pytest.mark.parametrize("drafter", ["prompt-lookup", "draft-model"])
def test_speculation_gives_the_same_outputs_and_accuracy(decoder, data_dir, bmodel, btok, drafter):
    from specdec.api import SpecDecoder
    from specdec.config import EngineConfig, SpecConfig

    task = get_task("gsm8k", max_new_tokens=24)
    train, test = load_gsm8k(data_dir, "train"), load_gsm8k(data_dir, "test")[:3]
    dec = decoder
    if drafter == "draft-model":  # the target itself as its own draft: everything is accepted
        dec = SpecDecoder(bmodel, btok, engine=EngineConfig(dtype="float32", max_context=4096), draft="self",
                          model_loader=lambda name: (bmodel, btok))
    spec = SpecConfig(drafter=drafter, k=3)
    ev = G.make_engine_evaluator(dec, task, G.GSM8KPrompter(task, train), spec, compare_plain=True)
    recs = [ev(x) for x in test]
    for r in recs:
        assert r["plain"]["identical"] and r["plain"]["text"] == r["text"]
        assert r["plain"]["correct"] == r["correct"]
        assert r["speed"]["new_tokens"] == r["n_tokens"] > 0
    s = G.summarize(task, recs)
    assert s["plain"]["identical_outputs"] == 3 and s["plain"]["accuracy_identical"]
    assert s["speed"]["new_tokens"] == sum(r["n_tokens"] for r in recs)
    if drafter == "draft-model":
        assert s["speed"]["acceptance_rate"] == 1.0 and s["speed"]["mean_accepted_length"] > 1.5


def test_summary_math():
    task = get_task("gsm8k")
    mk = lambda ok, n, s, d, a, r: {"correct": {"strict": ok, "flexible": True},  # noqa: E731
                                    "speed": {"new_tokens": n, "decode_s": s, "drafted": d, "accepted": a, "rounds": r}}
    s = G.summarize(task, [mk(True, 10, 1.0, 8, 6, 4), mk(False, 30, 2.0, 12, 3, 20)])
    assert s["accuracy"] == {"strict": 0.5, "flexible": 1.0} and s["acc"] == 0.5
    sp = s["speed"]
    assert sp["tokens_per_s"] == pytest.approx(40 / 3) and sp["acceptance_rate"] == pytest.approx(9 / 20)
    assert sp["mean_accepted_length"] == pytest.approx(40 / 24)
