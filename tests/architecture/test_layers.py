"""The layering rules of README's "Layers", checked on the source (imports inside functions included):

    policies       -> specdec.errors and specdec.registry only (small protocol types)
    specdec        -> policies; never mlm_generate or eval (except specdec.cli, the command line on top)
    mlm_generate   -> specdec, policies; never eval
    eval           -> specdec, policies, mlm_generate
    *.cli modules  -> imported by command-line modules only
and no import cycle between any two modules."""
from __future__ import annotations

import pytest

from importgraph import cycles, graph

G = graph()


def top(mod: str) -> str:
    return mod.split(".")[0]


def is_cli(mod: str) -> bool:
    return mod.endswith(".cli") or ".cli." in mod


def edges():
    return [(a, b) for a, bs in G.items() for b in sorted(bs)]


def test_the_graph_is_read():
    """A guard against a vacuous pass: the graph has the edges every layer is known to have."""
    assert ("specdec.engine.loop", "specdec.verify") in edges()
    assert ("policies.specdecpp.policy", "policies.base") in edges()
    assert len(G) > 80


def test_no_import_cycle():
    assert cycles(G) == []


def test_policies_import_only_the_small_protocol_types():
    allowed = {"specdec.errors", "specdec.registry"}
    bad = [(a, b) for a, b in edges() if top(a) == "policies" and top(b) == "specdec" and b not in allowed]
    assert bad == []
    assert [(a, b) for a, b in edges() if top(a) == "policies" and top(b) in ("mlm_generate", "eval")] == []


@pytest.mark.parametrize("low,high", [("specdec", "mlm_generate"), ("specdec", "eval"), ("mlm_generate", "eval")])
def test_lower_layers_never_import_higher_ones(low, high):
    bad = [(a, b) for a, b in edges() if top(a) == low and top(b) == high and not is_cli(a)]
    assert bad == []


def test_only_command_line_modules_import_command_line_modules():
    assert [(a, b) for a, b in edges() if is_cli(b) and not is_cli(a)] == []
