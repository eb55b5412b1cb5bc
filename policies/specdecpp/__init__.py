"""SpecDec++ (Huang, Guo & Wang 2024): an acceptance head on the draft model decides when to stop drafting.

    head.py       AcceptanceHead, save/load with the draft's identity, the bundled heads
    estimates.py  online cost and throughput estimates, Theorem 3.1's threshold, the process-wide tables
    policy.py     the `specdecpp` candidate-length policy (registered on import)

Building data, training, evaluating and calibrating a head drive the engine, so they live above it, in
specdec/head (`specdec head ...`).

See docs/specdecpp.md.
"""
from policies.specdecpp.head import (AcceptanceHead, HeadMismatchError, bundled_head, draft_identity, load_head,
                                     save_head)
from policies.specdecpp.policy import SpecDecPPPolicy, optimal_threshold

__all__ = ["AcceptanceHead", "HeadMismatchError", "SpecDecPPPolicy", "bundled_head", "draft_identity", "load_head",
           "optimal_threshold", "save_head"]
