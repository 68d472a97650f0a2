# Training parity by PyTorch's own float32 spread, in numbers: how a float32 run (ours, written by
# TrainingSpreadParityTests with MANET_TRAINING_SPREAD_OURS=FILE) and each PyTorch variant fare under
# the criterion of docs/PARITY.md, with the spread taken over all variants of spread.json or over the
# four the issue named.
"""Usage: python tools/parity/spread_report.py SPREAD_DIR [OURS.json]

For the spread over all variants and over the issue's four: how many step losses, step-1 gradients
and BN statistics of ours fall outside (factor x the largest variant deviation, plus the floor for
tensors) and the worst ratio to the allowance. Then leave-one-out: each PyTorch variant judged the
same way against the largest deviation of the other variants of the set (a run that is PyTorch, as
a yardstick for how often a correct float32 run falls outside). Variants whose results are
identical (a change that happens not to alter rounding on this machine, e.g. a thread count) are
one run: a variant is judged against the variants whose results differ from its own. With the
variants' knobs recorded, also against the variants that differ from it in more than the thread
count (a thread count changes few sums, so such a twin is a near-copy and a lenient judge).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def judge(run: dict, judges: list[dict], factor: float, floor: float) -> dict:
    """Counts of `run`'s losses, gradients and BN statistics outside the criterion with the spread
    taken over `judges`, and the worst ratio to the allowance (tensor name or step)."""
    result = {}
    steps = len(run["loss_abs_dev"])
    ratios = [(run["loss_abs_dev"][k] / (factor * max(j["loss_abs_dev"][k] for j in judges))
               if max(j["loss_abs_dev"][k] for j in judges) > 0 else float("inf"), f"step {k + 1}")
              for k in range(steps)]
    result["losses"] = (sum(r > 1 for r, _ in ratios), steps, max(ratios))
    for key in ("grad_rel_l2", "bn_stat_rel_l2"):
        ratios = [(run[key][t] / (factor * max(j[key][t] for j in judges) + floor), t) for t in run[key]]
        result[key] = (sum(r > 1 for r, _ in ratios), len(ratios), max(ratios))
    return result


def line(label: str, r: dict) -> str:
    parts = []
    for key, what in (("losses", "losses"), ("grad_rel_l2", "gradients"), ("bn_stat_rel_l2", "BN stats")):
        out, n, (ratio, where) = r[key]
        parts.append(f"{what} {out}/{n} outside (worst {ratio:.3g}x, {where})")
    return f"{label}: " + "; ".join(parts)


def main() -> None:
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    spread = json.loads((Path(sys.argv[1]) / "spread.json").read_text())
    factor, floor = spread["criterion"]["factor"], spread["criterion"]["floor"]
    variants = spread["variants"]
    sets = {"all variants": list(variants)}
    issue = [n for n in spread.get("issue_variants", []) if n in variants]
    if issue and len(issue) < len(variants):
        sets["the issue's four"] = issue
    ours = json.loads(Path(sys.argv[2]).read_text()) if len(sys.argv) == 3 else None
    for title, names in sets.items():
        print(f"== spread over {title} ({len(names)})")
        if ours is not None:
            print(line("  ours", judge(ours, [variants[n] for n in names], factor, floor)))
        groups: dict[str, list[str]] = {}
        for name in names:
            v = variants[name]
            key = json.dumps([v["losses"], v["grad_rel_l2"], v["bn_stat_rel_l2"]], sort_keys=True)
            groups.setdefault(key, []).append(name)
        twins = {n: g for g in groups.values() for n in g}
        print(f"  {len(groups)} distinct results; identical: "
              + (", ".join(" = ".join(g) for g in groups.values() if len(g) > 1) or "none"))
        for name in names:
            others = [variants[n] for n in names if n not in twins[name]]
            print(line(f"  {name} vs the other {len(others)}", judge(variants[name], others, factor, floor)))
        knobs = {n: variants[n].get("knobs") for n in names}
        if all(knobs.values()):
            print("  leave-one-out without the thread-count twins:")
            for name in names:
                same = (knobs[name]["onednn"], knobs[name]["input_ulps"])
                others = [variants[n] for n in names if n not in twins[name]
                          and (knobs[n]["onednn"], knobs[n]["input_ulps"]) != same]
                print(line(f"  {name} vs {len(others)}", judge(variants[name], others, factor, floor)))


if __name__ == "__main__":
    main()
