"""SpecDec++ head tooling above the engine (`specdec head ...`): training data built by running the engine
(data.py), training (train.py), evaluation (evaluate.py) and offline cost measurement (costs.py). The head
itself and the policy that uses it live in policies/specdecpp, which imports nothing of this package."""
