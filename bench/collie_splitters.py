"""What moving to the trained Punkt changed in COLLIE's figures (issue 17): per family and
mode, COLLIE's unpatched verdict to three decimals, our check's agreement with it, and
how many outputs NLTK's untrained Punkt (the old judge's and checker's splitter) and the
trained one split into different sentences.

    python bench/collie_splitters.py --data FILE --out A.jsonl [B.jsonl ...]

Judges the JSONL outputs as they are (no model, no generation) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.collie import FAMILIES, judge_file, load_records  # noqa: E402
from constraints.units import sentences  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="COLLIE instances, one JSON a line")
    ap.add_argument("--out", nargs="+", required=True, help="the JSONL outputs to judge")
    args = ap.parse_args(argv)
    from nltk.tokenize import PunktSentenceTokenizer

    untrained = PunktSentenceTokenizer()
    records = {r["id"]: r for r in load_records(args.data, [], None)}
    print("| file | family | n | COLLIE (unpatched) | our check agrees | split differently (untrained vs trained) |")
    print("|---|---|---:|---:|---:|---:|")
    for path in args.out:
        fams = defaultdict(list)
        for row in judge_file(path, records):
            row["moved"] = untrained.tokenize(row["text"]) != sentences(row["text"])
            fams[row["family"]].append(row)
        rates = []
        for fam in FAMILIES:
            rs = fams.get(fam)
            if not rs:
                continue
            rate = sum(bool(r["collie"]) for r in rs) / len(rs)
            rates.append(rate)
            judged = [r for r in rs if isinstance(r["ours"], bool)]
            agree = sum(r["ours"] == r["collie"] for r in judged)
            print(f"| {Path(path).name} | {fam} | {len(rs)} | {rate:.3f} | {agree}/{len(judged)} | "
                  f"{sum(r['moved'] for r in rs)} |")
        rows = [r for rs in fams.values() for r in rs]
        micro = sum(bool(r["collie"]) for r in rows) / len(rows)
        print(f"| {Path(path).name} | **macro {sum(rates) / len(rates):.3f}** (micro {micro:.3f}) | {len(rows)} | | "
              f"{sum(r['ours'] == r['collie'] for r in rows if isinstance(r['ours'], bool))}/"
              f"{sum(isinstance(r['ours'], bool) for r in rows)} | {sum(r['moved'] for r in rows)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
