"""The ADED tri-gram store: build / top-k / normalisation, save-load, tokenizer checks, online updates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from spec_helpers import make_tokenizer
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from specdec.drafters.aded import store as store_mod
from specdec.drafters.aded.config import AdedConfig
from specdec.drafters.aded.drafter import AdedDrafter
from specdec.drafters.aded.store import TrigramStore, check_tokenizer, tokenizer_fingerprint
from specdec.drafters.base import VerifyResult
from specdec.errors import DataError, InputError, SpecDecError, TokenizerMismatchError

V = 50


def _store(top_k: int = 12) -> TrigramStore:
    streams = [
        [1, 2, 3, 1, 2, 3, 1, 2, 4],  # (1,2) -> 3 twice, 4 once; (2,3) -> 1 twice; (3,1) -> 2 twice
        np.array([7, 8, 9]),  # a separate document
        [9, 1],  # too short for a tri-gram; one bigram
    ]
    return TrigramStore.build(streams, V, top_k=top_k)


def test_build_counts_and_normalises():
    s = _store()
    assert s.successors(1, 2) == ([3, 4], pytest.approx([2 / 3, 1 / 3]))
    assert s.successors(2, 3) == ([1], [1.0])
    assert s.successors(7, 8) == ([9], [1.0])
    assert s.successors(8, 9) == ([], [])  # documents never join: no (8, 9, 1)
    assert s.successors(5, 6) == ([], [])
    # bigram backoff: b = 2 is followed by 3 twice and 4 once (in any context)
    assert s.successors(None, 2, backoff=True) == ([3, 4], pytest.approx([2 / 3, 1 / 3]))
    assert s.successors(5, 2, backoff=True)[0] == [3, 4]  # unknown pair -> bigram successors of 2
    assert s.successors(5, 2, backoff=False) == ([], [])
    assert s.successors(9, 1, backoff=True) == ([2], [1.0])  # (9, 1) unknown as a pair: bigram of 1
    rep = s.size_report()
    assert rep["pairs"] == 4 and rep["corpus_tokens"] == 14 and rep["entries"] == s.num_entries


def test_top_k_keeps_the_most_frequent_and_keeps_full_normalisation():
    s = _store(top_k=1)
    assert s.successors(1, 2) == ([3], pytest.approx([2 / 3]))  # weight stays count / count(pair, *)


def test_build_in_chunks_equals_build_at_once(monkeypatch):
    rng = np.random.default_rng(0)
    streams = [rng.integers(0, 6, size=rng.integers(1, 40)) for _ in range(50)]
    whole = TrigramStore.build(streams, 6, top_k=3)
    monkeypatch.setattr(store_mod, "_REDUCE_EVERY", 7)
    chunked = TrigramStore.build(streams, 6, top_k=3)
    for name in ("keys", "offsets", "succ", "weights"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name))
    # weights of a pair: descending, in (0, 1], at most top_k
    for i in range(whole.num_pairs):
        w = whole.weights[whole.offsets[i]: whole.offsets[i + 1]]
        assert 1 <= len(w) <= 3 and np.all(np.diff(w) <= 0) and w.sum() <= 1 + 1e-6


def test_out_of_range_tokens_refused():
    with pytest.raises(InputError):
        TrigramStore.build([[1, 2, V]], V)
    with pytest.raises(InputError):
        TrigramStore.build([[-1, 2, 3]], V)


def test_save_load_round_trip(tmp_path):
    s = _store()
    s.meta.update(tokenizer="toy", sources=["hand-made"])
    report = s.save(tmp_path / "sub" / "store.safetensors")
    assert report["file_bytes"] > 0 and report["entries"] == s.num_entries
    t = TrigramStore.load(tmp_path / "sub" / "store.safetensors")
    for name in ("keys", "offsets", "succ", "weights"):
        np.testing.assert_array_equal(getattr(s, name), getattr(t, name))
    assert t.V == V and t.meta["tokenizer"] == "toy" and t.meta["sources"] == ["hand-made"]
    assert t.successors(1, 2) == s.successors(1, 2)
    assert (tmp_path / "sub" / "store.safetensors").read_bytes()[:8] != b"\x80\x04"  # not a pickle
    empty = TrigramStore.empty(V)
    empty.save(tmp_path / "empty.safetensors")
    assert TrigramStore.load(tmp_path / "empty.safetensors").num_pairs == 0


def test_bad_files_refused(tmp_path):
    with pytest.raises(DataError, match="no ADED store"):
        TrigramStore.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a store at all")
    with pytest.raises(DataError, match="not a readable ADED store"):
        TrigramStore.load(tmp_path / "junk.safetensors")
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(DataError, match="not an ADED"):
        TrigramStore.load(tmp_path / "other.safetensors")


def _other_tokenizer(vocab: int) -> PreTrainedTokenizerFast:
    words = ["<unk>", "<eos>", "<pad>"] + [f"x{i}" for i in range(vocab - 3)]  # same size, other strings
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<pad>")


def test_tokenizer_mismatch_refused(tmp_path):
    tok = make_tokenizer(64)
    s = TrigramStore.build([[3, 4, 5]], len(tok), meta={"tokenizer": "toy-64", "tokenizer_fingerprint": tokenizer_fingerprint(tok)})
    s.save(tmp_path / "s.safetensors")
    assert TrigramStore.load(tmp_path / "s.safetensors", tokenizer=make_tokenizer(64)).num_pairs == 3  # same vocab
    with pytest.raises(TokenizerMismatchError, match="toy-64.*rebuild"):
        TrigramStore.load(tmp_path / "s.safetensors", tokenizer=make_tokenizer(80))  # other size
    with pytest.raises(SpecDecError, match="rebuild"):
        TrigramStore.load(tmp_path / "s.safetensors", tokenizer=_other_tokenizer(64))  # same size, other vocab
    check_tokenizer({"vocab_size": 64}, tok)  # no fingerprint recorded: the size alone is checked


def test_online_update_rule():
    cfg = AdedConfig()
    assert (cfg.increment, cfg.cap, cfg.window, cfg.top_k) == (0.04, 3.0, 16, 12)  # the published numbers
    s = TrigramStore.empty(V)
    s.update([5, 6, 7])
    assert s.successors(5, 6) == ([7], [pytest.approx(0.04)])
    s.update([1, 2, 3, 1, 2, 3])  # (1,2,3) occurs twice: +0.04 per occurrence
    assert s.successors(1, 2) == ([3], [pytest.approx(0.08)])
    assert s.successors(2, 3) == ([1], [pytest.approx(0.04)])
    for _ in range(100):
        s.update([5, 6, 7])
    assert s.successors(5, 6) == ([7], [3.0])  # capped
    s.reset()
    assert s.successors(5, 6) == ([], [])


def test_update_on_top_of_a_corpus_and_eviction():
    s = _store()
    s.update([1, 2, 4])
    succ, w = s.successors(1, 2)
    assert succ == [3, 4] and w == pytest.approx([2 / 3, 1 / 3 + 0.04])
    s.update([1, 2, 5], top_k=2)  # a new successor enters; the weakest other one leaves
    assert s.successors(1, 2) == ([3, 5], pytest.approx([2 / 3, 0.04]))
    s.reset()
    assert s.successors(1, 2) == ([3, 4], pytest.approx([2 / 3, 1 / 3]))  # back to the base store
    s.update([V + 3, 1, 2])  # ids outside the store's vocabulary are skipped
    assert s.successors(1, 2)[0] == [3, 4]


def _result(tokens: list[int]) -> VerifyResult:
    return VerifyResult(torch.tensor([tokens]), len(tokens) - 1, 0, list(range(len(tokens) - 1)), True)


def test_drafter_window_reset_and_persist():
    s = TrigramStore.empty(V)
    d = AdedDrafter(s, AdedConfig(learn_prompt=True))
    d.start(torch.tensor([[1, 2, 3]]))
    assert s.successors(1, 2) == ([3], [pytest.approx(0.04)])  # the prompt is learned
    d.observe(_result([4]))  # window = last 16 committed tokens: [1, 2, 3, 4]
    assert s.successors(1, 2) == ([3], [pytest.approx(0.08)]) and s.successors(2, 3) == ([4], [pytest.approx(0.04)])
    d.observe(_result(list(range(10, 24))))  # 14 more tokens: (1, 2, 3) leaves the 16-token window
    assert s.successors(1, 2) == ([3], [pytest.approx(0.08)])
    assert s.successors(2, 3) == ([4], [pytest.approx(0.04)])  # the window now starts at 3
    assert s.successors(3, 4) == ([10], [pytest.approx(0.04)])
    d.start(torch.tensor([[30, 31]]))  # a new generation: adaptation reset
    assert s.successors(1, 2) == ([], [])
    p = AdedDrafter(s, AdedConfig(persist=True))
    p.start(torch.tensor([[1, 2, 3]]))
    p.start(torch.tensor([[40, 41]]))
    assert s.successors(1, 2) == ([3], [pytest.approx(0.04)])  # persist=True keeps it
    off = AdedDrafter(TrigramStore.empty(V), AdedConfig(adapt=False))
    off.start(torch.tensor([[1, 2, 3]]))
    off.observe(_result([4, 5]))
    assert off.store.successors(1, 2) == ([], [])


def test_store_auto_picks_the_bundled_store_only_for_its_tokenizer(tmp_path, monkeypatch):
    from specdec.drafters import DRAFTERS
    from specdec.drafters.aded import drafter as drafter_mod
    from specdec.drafters.registry import DrafterEnv

    tok = make_tokenizer()
    bundled = tmp_path / "stores"
    bundled.mkdir()
    monkeypatch.setattr(drafter_mod, "BUNDLED_STORES", bundled)
    env = DrafterEnv(tok, None, lambda name: None)
    assert DRAFTERS.create("aded", env=env).store.num_pairs == 0  # nothing shipped: empty
    with pytest.raises(InputError, match="no bundled store"):
        DRAFTERS.create("aded", env=env, store="bundled")
    other = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token="a")))
    TrigramStore.build([[1, 0, 1, 0]], len(tok), meta={"tokenizer_fingerprint": tokenizer_fingerprint(other)}).save(
        bundled / "a-other.safetensors")
    TrigramStore.build([[5, 6, 7, 5, 6, 7]], len(tok), meta={"tokenizer_fingerprint": tokenizer_fingerprint(tok)}).save(
        bundled / "b-mine.safetensors")
    d = DRAFTERS.create("aded", env=env)  # auto: skips the other tokenizer's store, takes ours
    assert d.store.num_pairs == TrigramStore.load(bundled / "b-mine.safetensors").num_pairs
    assert drafter_mod.bundled_store(tok).name == "b-mine.safetensors"
    assert DRAFTERS.create("aded", env=env, store="empty").store.num_pairs == 0


def test_the_shipped_store_is_readable_and_records_its_corpus():
    from specdec.drafters.aded.drafter import BUNDLED_STORES

    paths = sorted(BUNDLED_STORES.glob("*.safetensors"))
    assert paths, "the package ships at least one ADED store"
    for p in paths:
        meta = TrigramStore.read_meta(p)
        assert meta["format"] == "specdec-aded-trigram" and meta["tokenizer_fingerprint"] and meta["corpus_tokens"] > 0
        assert all(not s.startswith("/") for s in meta["sources"])  # provenance is a repository path
        repo = Path(__file__).resolve().parents[3]
        assert all(s == "stdlib" or (repo / s).is_file() for s in meta["sources"]), meta["sources"]
        assert TrigramStore.load(p).num_pairs > 0


@pytest.mark.slow
def test_the_shipped_store_is_rebuilt_exactly_by_its_recorded_command(tmp_path, monkeypatch):
    """`specdec aded build` with the sources and settings the shipped store records gives the same tensors (the
    file's header also records when it was saved, so the files' own hashes differ)."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from specdec.cli.aded import aded_app
    from specdec.drafters.aded.drafter import BUNDLED_STORES

    monkeypatch.chdir(Path(__file__).resolve().parents[3])  # sources are repository paths
    for p in sorted(BUNDLED_STORES.glob("*.safetensors")):
        meta = TrigramStore.read_meta(p)
        args = ["build", "--tokenizer", meta["tokenizer"], "--top-k", str(meta["top_k"]), "--min-count",
                str(meta["min_count"]), "--bigrams" if meta["bigrams"] else "--no-bigrams", "--out", str(tmp_path / p.name)]
        for src in meta["sources"]:
            args += ["--from", src]
        res = CliRunner().invoke(aded_app, args)
        assert res.exit_code == 0, res.output
        old, new = load_file(str(p)), load_file(str(tmp_path / p.name))
        assert old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old), p.name


def test_recycle_rule_latest_guess_wins_others_stay():
    s = _store()  # (1, 2) -> 3 (2/3), 4 (1/3) in the base store; b = 2's bigram context the same
    s.recycle(1, 2, [4, 9], [0.7, 0.2], top_k=12, bigrams=False)
    assert s.successors(1, 2) == ([4, 3, 9], pytest.approx([0.7, 2 / 3, 0.2]))  # 4 replaced, 3 kept, 9 new
    assert s.successors(None, 2, backoff=True) == ([3, 4], pytest.approx([2 / 3, 1 / 3]))  # bigrams=False
    s.recycle(1, 2, [4], [0.1], bigrams=False)  # a later context: the target's newest guess replaces the old one
    assert s.successors(1, 2) == ([3, 9, 4], pytest.approx([2 / 3, 0.2, 0.1]))
    s.recycle(1, 2, [5, 6], [0.5, 0.4], top_k=3)  # past top_k the weakest *other* successors leave (4, then 9)
    assert s.successors(1, 2) == ([3, 5, 6], pytest.approx([2 / 3, 0.5, 0.4]))
    assert s.successors(None, 2, backoff=True) == ([3, 5, 6], pytest.approx([2 / 3, 0.5, 0.4]))  # b's context too
    s.recycle(None, 7, [8], [0.9])  # one committed token (no left token): only the bigram context learns
    assert s.successors(None, 7, backoff=True) == ([8], [pytest.approx(0.9)])
    before = dict(s.live)
    s.recycle(1, V + 5, [3], [0.5])  # ids outside the vocabulary: nothing learnt
    s.recycle(1, 2, [V + 1], [0.5])
    assert s.live.keys() == before.keys() and s.successors(1, 2)[0] == [3, 5, 6]
    s.reset()
    assert s.successors(1, 2) == ([3, 4], pytest.approx([2 / 3, 1 / 3]))  # recycled weights are adaptation: reset


def test_drafter_recycles_every_verified_row_into_its_tri_gram():
    """Row 0 is the target's guess after the committed text's last two tokens; row i+1 after node i, whose tri-gram
    is (its parent's token, or the last committed token for a first-level node; its own token)."""
    s = TrigramStore.build([[1, 2, 3, 4, 2, 5]], V)  # (1, 2) -> 3; (2, 3) -> 4; (3, 4) -> 2; (4, 2) -> 5
    d = AdedDrafter(s, AdedConfig(recycle=2, sized=False, suffix=False, learn_prompt=False, adapt=True))
    assert d.target_topk == 2
    assert AdedDrafter(s, AdedConfig(recycle=2, adapt=False)).target_topk == 0  # no adaptation: nothing to learn
    assert AdedDrafter(s, AdedConfig()).target_topk == 4  # the default
    assert AdedDrafter(s, AdedConfig(recycle=0)).target_topk == 0  # off
    d.start(torch.tensor([[9, 1, 2]]))
    from specdec.config import SamplingConfig
    from specdec.drafters.base import DraftContext

    draft = d.propose(DraftContext(torch.tensor([[9, 1, 2]]), 3, 8, None, SamplingConfig(), policy_k=None))
    toks, parents = draft.tokens[0].tolist(), (draft.tree.parents if draft.tree else list(range(-1, draft.length - 1)))
    assert toks[:2] == [3, 4] and parents[:2] == [-1, 0]
    K = draft.length
    ids = torch.tensor([[20 + r, 30 + r] for r in range(K + 1)])  # (K+1, 2): row r guesses 20+r, then 30+r
    probs = torch.tensor([[0.6, 0.3]] * (K + 1))
    res = VerifyResult(torch.tensor([[3, 21]]), 1, K, [0], False, top_ids=ids, top_probs=probs)
    d.observe(res)
    assert dict(zip(*s.successors(1, 2)))[20] == pytest.approx(0.6)  # row 0: after the committed (1, 2)
    # node 0 = 3, its parent the root token 2; (2, 3, 21) was then committed too: the usual +0.04 on top
    assert dict(zip(*s.successors(2, 3)))[21] == pytest.approx(0.6 + 0.04)
    assert dict(zip(*s.successors(3, 4)))[22] == pytest.approx(0.6)  # node 1 = 4 under node 0
    assert dict(zip(*s.successors(3, 4)))[32] == pytest.approx(0.3)
    # a result for a draft the drafter did not make (another drafter's, or the guard's plain round): row 0 only
    d.observe(VerifyResult(torch.tensor([[7]]), 0, 0, [], True, top_ids=torch.tensor([[40, 41]]),
                           top_probs=torch.tensor([[0.5, 0.1]])))
    assert dict(zip(*s.successors(3, 21)))[40] == pytest.approx(0.5)  # after the committed (3, 21)
