"""The CamVid v2 table from the tracked figures in results/camvid_v2/ROW_sSEED/ (val metrics.json,
test test_metrics.json), as Markdown: one line per row with the mean over its seeds and each
seed's value, the gain over the reference row, and whether it exceeds the seeds' spread.

The run folders (and model files) do not outlive a machine here; these figures do, so the table
is rebuilt from them rather than from `distill compare` on runs that may be gone.

    python bench/v2_table.py [--reference student_only] [ROW ...]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean

RESULTS = Path(__file__).resolve().parents[1] / "results" / "camvid_v2"
FOLDER = re.compile(r"(?P<row>.+)_s(?P<seed>\d+)")
METRICS = (("miou", "mIoU"), ("boundary_iou", "boundary IoU"), ("trimap_iou", "trimap IoU"))


def load_rows(results: Path) -> dict[str, dict[int, dict[str, dict]]]:
    """row -> seed -> {"val": metrics, "test": metrics, "wall_s": seconds} for complete folders."""
    rows: dict[str, dict[int, dict[str, dict]]] = defaultdict(dict)
    for folder in sorted(results.iterdir()):
        match = FOLDER.fullmatch(folder.name)
        val, test = folder / "metrics.json", folder / "test_metrics.json"
        if match and val.is_file() and test.is_file():
            v = json.loads(val.read_text())
            rows[match["row"]][int(match["seed"])] = {"val": v, "test": json.loads(test.read_text()),
                                                      "wall_s": v.get("wall_time_s"), "iterations": v.get("iterations")}
    return dict(rows)


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{mean(values):.2f} ({' / '.join(f'{v:.2f}' for v in values)})"


def gain(values: list[float], reference: list[float]) -> str:
    """Mean gain, and '*' when every seed of the row beats every seed of the reference."""
    if not reference:
        return "-"
    delta = mean(values) - mean(reference)
    return f"{delta:+.2f}{'*' if min(values) > max(reference) else ''}"


def table(rows: dict[str, dict[int, dict[str, dict]]], order: list[str], reference: str) -> str:
    head = ["row", "seeds"] + [f"{label} {split}" for split in ("val", "test") for _, label in METRICS[:1]]
    head += [f"gain {split}" for split in ("val", "test")]
    head += [f"{label} {split}" for split in ("val", "test") for _, label in METRICS[1:]]
    head += ["iterations", "wall min (mean)"]
    ref = rows.get(reference, {})
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in order:
        seeds = rows[name]
        pick = lambda split, key: [seeds[s][split][key] for s in sorted(seeds)]  # noqa: E731
        refs = lambda split: [ref[s][split]["miou"] for s in sorted(ref)]  # noqa: E731
        walls = [seeds[s]["wall_s"] for s in seeds if seeds[s]["wall_s"]]
        line = [name, ", ".join(map(str, sorted(seeds)))]
        line += [cell(pick(split, "miou")) for split in ("val", "test")]
        line += [gain(pick(split, "miou"), refs(split)) if name != reference else "-" for split in ("val", "test")]
        line += [cell(pick(split, key)) for split in ("val", "test") for key, _ in METRICS[1:]]
        line += [", ".join(sorted({str(seeds[s]["iterations"]) for s in seeds})), f"{mean(walls) / 60:.0f}" if walls else "-"]
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="*", help="rows in table order (default: all, reference first)")
    parser.add_argument("--reference", default="student_only", help="the row gains are measured against")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = load_rows(args.results)
    order = args.rows or sorted(rows, key=lambda r: (r != args.reference, r))
    missing = [r for r in order if r not in rows]
    if missing:
        raise SystemExit(f"bench/v2_table.py: no complete seeds for {', '.join(missing)} in {args.results} "
                         f"(rows there: {', '.join(sorted(rows))})")
    print(table(rows, order, args.reference))
    print(f"\nmIoU cells: mean over seeds (each seed's value); gain: mean minus {args.reference}'s mean, "
          f"* where every seed beats every seed of {args.reference}.")


if __name__ == "__main__":
    main()
