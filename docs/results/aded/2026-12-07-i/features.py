"""How often the tested store nodes of the collected full trees (rounds.jsonl.gz, collect.py) were accepted, by one
feature at a time: their conditional score in fifths (sc), whether their context pair was adapted in this text
(live), whether their tri-gram was known (tri), and their pair's total weight class (mass: < 0.3, 1, 3, 6, more);
first nodes (depth 0) apart from deeper ones (1). Suffix-match nodes left out.
`python docs/results/aded/2026-12-07-i/features.py [ROUNDS.jsonl.gz]`"""
import collections, gzip, json, sys

path = sys.argv[1] if len(sys.argv) > 1 else "docs/results/aded/2026-12-07-i/rounds.jsonl.gz"
rs = [json.loads(line) for line in gzip.open(path, "rt")]
c = collections.Counter()
for r in rs:
    ok = set(r["accepted"])
    for j, p in enumerate(r["parents"]):
        if not (p < 0 or p in ok) or r["kinds"][j]:
            continue  # untested, or a suffix match's node
        d = 0 if p < 0 else 1
        m = r["mass"][j]
        cond = r["scores"][j] / (r["scores"][p] if p >= 0 else 1)
        for key in (("sc", min(int(cond * 5), 4)), ("live", r["live"][j]), ("tri", r["tri"][j]),
                    ("mass", (m >= 0.3) + (m >= 1) + (m >= 3) + (m >= 6))):
            c[(d,) + key + ("n",)] += 1
            c[(d,) + key + ("acc",)] += j in ok
print(f"{len(rs)} rounds; depth, feature, class: tested nodes, share accepted")
for k in sorted({k[:3] for k in c}):
    n = c[k + ("n",)]
    print(k, n, round(c[k + ("acc",)] / max(n, 1), 3))
