"""specdec.drafters.aded.prompts: the `broad` training prompts for `specdec aded distill`."""
from __future__ import annotations

import json

import pytest

from specdec.drafters.aded.distill import prompts_from
from specdec.drafters.aded.prompts import TOPIC_TEMPLATES, broad_prompts
from specdec.errors import DataError


def _data(root):
    (root / "gsm8k").mkdir(parents=True)
    (root / "gsm8k" / "train.jsonl").write_text(
        "".join(json.dumps({"question": f"Q{i}: how many apples?", "answer": "#### 3"}) + "\n" for i in range(3)))
    for split in ("dev", "val"):
        (root / "mmlu" / split).mkdir(parents=True)
        (root / "mmlu" / split / f"world_religions_{split}.csv").write_text(
            'Which is oldest?,"Hinduism, of course",Islam,Sikhism,Bahai,A\nbad row,1\n')
    (root / "sst2").mkdir()
    (root / "sst2" / "train.tsv").write_text(
        "sentence\tlabel\n" + "a long and winding film that never quite finds its footing but charms anyway\t1\n"
        + "too short\t0\n")
    return root


def test_broad_interleaves_every_source_and_reads_only_training_splits(tmp_path):
    got = broad_prompts(_data(tmp_path))
    # the first five: one topic template, one stdlib function, GSM8K train, MMLU val, SST-2 train in turn
    assert got[0] == TOPIC_TEMPLATES[0].format(t="world religions")
    assert got[1].startswith("Write a Python function `") and "docstring" in got[1]
    assert got[2] == "Q0: how many apples?"
    assert got[3].startswith("Which is oldest?\nA. Hinduism, of course\nB. Islam") and "explain" in got[3]
    assert "never quite finds its footing" in got[4] and "1 to 5" in got[4]
    assert not any("too short" in p or "bad row" in p for p in got)  # short reviews, malformed CSV rows left out
    assert len([p for p in got if "world religions" in p]) == len(TOPIC_TEMPLATES)
    assert got == broad_prompts(tmp_path)  # deterministic


def test_prompts_from_broad_takes_the_first_n_and_missing_data_is_one_line(tmp_path):
    data = _data(tmp_path / "d")
    assert prompts_from("broad", data, 7) == broad_prompts(data)[:7]
    (data / "sst2" / "train.tsv").unlink()
    with pytest.raises(DataError, match="sst2/train.tsv"):
        prompts_from("broad", data, 7)
    with pytest.raises(DataError, match="not gsm8k or broad"):
        prompts_from("nonsense", data, 7)
