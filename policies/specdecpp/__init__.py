"""SpecDec++ (Huang, Guo & Wang 2024): an acceptance head on the draft model decides when to stop drafting.

    head.py      AcceptanceHead, save/load with the draft's identity, the bundled heads
    data.py      training data: labels min(1, p/q), the 15% keep mix, sharded resumable build
    train.py     weighted soft BCE, AdamW, checkpointed resumable training on cached features
    evaluate.py  AUC, reliability table, calibration
    policy.py    the `specdecpp` candidate-length policy (registered on import) and Theorem 3.1's threshold

See docs/specdecpp.md.
"""
from policies.specdecpp.head import (AcceptanceHead, HeadMismatchError, bundled_head, draft_identity, load_head,
                                     save_head)
from policies.specdecpp.policy import SpecDecPPPolicy, optimal_threshold

__all__ = ["AcceptanceHead", "HeadMismatchError", "SpecDecPPPolicy", "bundled_head", "draft_identity", "load_head",
           "optimal_threshold", "save_head"]
