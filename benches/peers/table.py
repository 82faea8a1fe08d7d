"""Prints scripts/bench-peers' side-by-side table (Markdown) from its rounds:
each round's folder holds wgpu-mlp.json (`wgpu-mlp bench --json`) and one
JSON line per measurement from each peer (*.jsonl).

    python table.py ROUND_DIR...
"""

import glob
import json
import os
import statistics
import sys

CASES = ["seed", "mlp"]


def rows_of(round_dir):
    """{(implementation, variant): {case: us_per_step}} of one round."""
    rows = {}
    for m in json.load(open(os.path.join(round_dir, "wgpu-mlp.json"))):
        rows.setdefault(("wgpu-mlp", f"{m['device']} device"), {})[m["case"]] = m["us_per_step"]
    for path in sorted(glob.glob(os.path.join(round_dir, "*.jsonl"))):
        for line in open(path):
            m = json.loads(line)
            rows.setdefault((m["framework"], m["variant"]), {})[m["case"]] = m["us_per_step"]
    return rows


def main(round_dirs):
    rounds = [rows_of(d) for d in round_dirs]
    names = list(dict.fromkeys(name for r in rounds for name in r))
    ours = ("wgpu-mlp", "cpu device")
    median = {(name, case): statistics.median(r[name][case] for r in rounds if case in r.get(name, {}))
              for name in names for case in CASES if any(case in r.get(name, {}) for r in rounds)}
    print("| implementation | " + " | ".join(f"{c} us/step" for c in CASES)
          + " | " + " | ".join(f"wgpu-mlp / it, {c}" for c in CASES) + " |")
    print("|---|" + "---:|" * (2 * len(CASES)))
    for name in names:
        cells = [", ".join(f"{r[name][c]:.2f}" for r in rounds if c in r.get(name, {})) or "-" for c in CASES]
        ratios = [f"{median[(ours, c)] / median[(name, c)]:.2f}" if (name, c) in median and (ours, c) in median
                  and name != ours else "-" for c in CASES]
        label = f"{name[0]}, {name[1]}"
        print(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    print()
    print(f"Each figure is one round ({len(rounds)} in all, in order); the ratios are of the medians over the rounds, "
          "below 1 where wgpu-mlp's CPU device is faster.")


if __name__ == "__main__":
    main(sys.argv[1:])
