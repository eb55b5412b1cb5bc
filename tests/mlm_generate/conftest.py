"""Fixtures for the mlm_generate tests (helpers live in mlm_fixtures.py)."""
from mlm_fixtures import any_mlm, bert_mlm, bert_tok, modernbert_mlm, roberta_tok  # noqa: F401
