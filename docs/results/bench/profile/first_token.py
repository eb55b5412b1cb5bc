"""Seconds from starting `specdec generate` to its first generated text on stdout (the CPU-speed issue's
"first token within 10 s with a warm model cache"), for the default command and the draft-model variant.

    python docs/results/bench/profile/first_token.py [RUNS]   -> a table, and first_token.json beside this file

Each run is a fresh process (imports, model load, kernel load, prefill: everything a user waits for). The
first line of stdout is the first streamed piece: the CLI prints pieces as they are committed.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "Write a Python function that checks whether a number is prime."
SPECDEC = str(Path(sys.executable).with_name("specdec"))
COMMANDS = {
    "default": [SPECDEC, "generate", PROMPT, "-n", "32"],
    "draft-model": [SPECDEC, "generate", PROMPT, "-n", "32", "--draft", "qwen2.5-coder-0.5b-instruct"],
}


def one(cmd: list[str]) -> dict:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    first = p.stdout.read(1)
    t_first = time.perf_counter() - t0
    rest, err = p.communicate()
    t_end = time.perf_counter() - t0
    if p.returncode != 0 or not first:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode()[-500:]}")
    return {"first_output_s": t_first, "total_s": t_end, "stats": err.decode().strip().splitlines()[-1]}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    one(COMMANDS["default"])  # warm the model cache and the page cache first (not counted)
    out = {}
    for name, cmd in COMMANDS.items():
        rows = [one(cmd) for _ in range(runs)]
        out[name] = {"runs": rows, "median_first_output_s": statistics.median(r["first_output_s"] for r in rows),
                     "median_total_s": statistics.median(r["total_s"] for r in rows), "command": cmd[1:]}
        print(f"{name:12s} first output {out[name]['median_first_output_s']:.2f} s (median of {runs}), "
              f"whole command {out[name]['median_total_s']:.2f} s; {rows[-1]['stats']}", flush=True)
    Path(__file__).with_name("first_token.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
