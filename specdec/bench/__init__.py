"""Benchmarks: the same prompts through plain decoding, speculative setups and HF baselines (`specdec bench`)."""
from specdec.bench.prompts import BenchPrompt, auto_max_context, load_prompts
from specdec.bench.report import (build_report, machine_info, plot, read_report, render_category_table, render_cost_table,
                                  render_table, write_json_atomic)
from specdec.bench.runner import (Backend, SetupSpec, by_category, default_setups, parse_setup,
                                  run_bench)

__all__ = ["Backend", "BenchPrompt", "auto_max_context", "SetupSpec", "build_report", "by_category", "default_setups",
           "load_prompts", "machine_info", "parse_setup", "plot", "read_report", "render_category_table", "render_cost_table",
           "render_table", "run_bench", "write_json_atomic"]
