"""Issue 2's speed figures, measured in one run on this machine:

- our loop unconstrained vs transformers' model.generate (target >= 1.0)
- lipogram-e vs unconstrained, our loop (target >= 0.95)
- ours with lipogram-e vs a CTGS-style baseline (no cache, whole vocabulary decoded and
  filtered in Python each step)
- cold start (GGUF conversion) and warm start to first token, peak memory

    python bench/speed.py [--tokens 100] [--repeats 2] [--baseline-tokens 100] [--device auto]
Writes bench/results/speed-<device>.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start_times() -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as cold_cache:
        for label, cache in (("cold (GGUF conversion)", cold_cache), ("warm", cold_cache)):
            env = dict(os.environ, PEREC_CACHE=cache)
            out = subprocess.run([sys.executable, str(ROOT / "bench" / "first_token.py")], env=env,
                                 capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            d = json.loads(out)
            rows.append(f"  start, {label:<24} first token after {d['first_token_seconds']:6.1f} s "
                        f"(model ready {d['load_seconds']:.1f} s), peak RSS {d['peak_rss_mb']:.0f} MB")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--baseline-tokens", type=int, default=100)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-start", action="store_true", help="skip the cold/warm start runs")
    args = ap.parse_args()

    import studio
    from studio.benchmark import run_speed

    engine = studio.load(device=args.device)
    report = run_speed(engine, tokens=args.tokens, repeats=args.repeats,
                       baseline_tokens=args.baseline_tokens)
    lines = report["table"].splitlines()
    if not args.no_start:
        lines += start_times()
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "results" / f"speed-{engine.device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("```\n$ python bench/speed.py\n" + text + "\n```\n")


if __name__ == "__main__":
    main()
