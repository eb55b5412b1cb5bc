"""specdec's evaluation suite: MMLU and GSM8K, accuracy and speed, through this engine or vLLM.

Modules import lazily: ``eval.tasks`` / ``eval.data`` need only the standard library, so the vLLM
worker (run with another venv's interpreter) can live in this package too. See docs/eval.md.
"""
