"""A real `specdec` process for the fault-injection tests: registers a fake zoo model (a tiny BERT whose
"installed package" files are local), optionally slows the pull or the eval down so that a test can kill it
mid-way, then runs the CLI with the remaining arguments.

    python fault_child.py SPEC.json -- models pull tiny-bert

SPEC.json: {"name": ..., "files": {member: path}, "copy_delay_s": 0.0, "item_delay_s": 0.0}
Prints "FAULT-CHILD copied <file>" after each copied model file and "FAULT-CHILD item" after each eval item
(flushed), so the parent knows when the process is mid-pull or mid-run.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path


def main() -> None:
    import signal

    # A child of a background job inherits SIGINT ignored (and Python then installs no KeyboardInterrupt handler):
    # the SIGINT cases test the CLI's handling, so give the child the interactive default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = sys.argv[1:]
    cut = argv.index("--")
    opts, cli_args = argv[:cut], argv[cut + 1:]
    spec = json.loads(Path(opts[0]).read_text())

    from specdec.zoo import ZOO, ModelSpec, Part, convert, sources

    parts, by_member = [], {}
    for member, path in spec["files"].items():
        data = Path(path).read_bytes()
        parts.append(Part("tinybert", "1.0", "tinybert", member, len(data), hashlib.sha256(data).hexdigest()))
        by_member[member] = Path(path)
    sources.installed_path = lambda part: by_member.get(part.member)
    ZOO[spec["name"]] = ModelSpec(name=spec["name"], hf_id="", kind="masked-lm", source="fault test",
                                  fmt="folder", parts=tuple(parts), params=1)

    copy_delay = float(spec.get("copy_delay_s", 0.0))
    real_copy = convert.copy_parts

    def slow_copy(files, out, *a, **kw):
        real_copy(files, out, *a, **kw)
        print(f"FAULT-CHILD copied {out.name}", flush=True)
        time.sleep(copy_delay)

    convert.copy_parts = slow_copy

    item_delay = float(spec.get("item_delay_s", 0.0))
    from eval import runner as R

    real_execute = R.Run.execute

    def slow_execute(self, items, fn, *a, **kw):
        def each(item):
            out = fn(item)
            print("FAULT-CHILD item", flush=True)
            time.sleep(item_delay)
            return out
        return real_execute(self, items, each, *a, **kw)

    R.Run.execute = slow_execute

    from specdec.cli.main import app

    app(cli_args, prog_name="specdec")


if __name__ == "__main__":
    main()
