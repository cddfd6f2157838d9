"""The CTGS paper's Lipogram-e table, reproduced in shape on the embedded model.

Data: ../shared/data/gadsby-train.txt (the first 80% of Wright's *Gadsby*, no letter "e").
Its last 10% (cut at a paragraph) is the test split; an adapter is trained on a subset of
the rest.  Rows: base, base + lipogram filter, LoRA adapter, adapter + filter.  Columns:
perplexity on the test split (studio.scoring.score_text, the numbers `perec score` prints;
with the filter, renormalised over the allowed tokens) and the share of words containing
"e" in free generations from test-split prompts.

    python bench/lipogram_table.py [--steps 200] [--examples 400] [--generations 20] [--tokens 100]

Prints the settings and the table; writes bench/results/lipogram_table.md.  The adapter is
kept in artifacts/bench/gadsby-lora (a rerun with the same settings resumes, i.e. skips
training).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GADSBY = ROOT.parent / "shared" / "data" / "gadsby-train.txt"
ADAPTER = ROOT / "artifacts" / "bench" / "gadsby-lora"
PAPER = ("CTGS paper (GPT-2-medium): perplexity 237.37 base, 211.53 with the filter; fine-tuned 78.24, "
         "77.99 with the filter; ignored-constraint errors 28.2% -> 0% with the filter")


def split(text: str, test_share: float = 0.1) -> tuple[str, str]:
    """(train, test): the test split is the last ``test_share`` of the text, from a paragraph start."""
    cut = int(len(text) * (1 - test_share))
    para = text.find("\n\n", cut)
    cut = para + 2 if para != -1 else cut
    return text[:cut], text[cut:]


def test_prompts(test: str, n: int, words: int = 12) -> list[str]:
    """``n`` prompts, evenly spaced through the test split: the first words of a sentence."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(test.split()))]
    sentences = [s for s in sentences if len(s.split()) >= words]
    step = max(1, len(sentences) // n)
    return [" ".join(s.split()[:words]) for s in sentences[::step][:n]]


def e_rate(texts: list[str]) -> tuple[float, int]:
    words = [w for t in texts for w in re.findall(r"[^\W\d_]+", t)]
    return (sum("e" in w.lower() for w in words) / len(words) if words else 0.0), len(words)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200, help="SFT steps for the adapter")
    ap.add_argument("--examples", type=int, default=400, help="training chunks (a subset of the train split)")
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=96)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    import studio
    from models.adapters import EngineView, adapters_for
    from models.controllers import SourcePlan
    from models.train import TrainingData, chunk_text, train_adapter
    from studio.decode.settings import Settings
    from studio.scoring import score_text
    from constraints.spec import parse_spec

    t0 = time.perf_counter()
    train, test = split(GADSBY.read_text(encoding="utf-8"))
    chunks = chunk_text(train, 60)
    stride = max(1, len(chunks) // args.examples)
    subset = chunks[::stride][:args.examples]  # spread over the whole train split
    prompts = test_prompts(test, args.generations)
    settings = [
        f"data: {GADSBY.name}, {len(train.split())} train words / {len(test.split())} test words (last 10%)",
        f"adapter: LoRA rank {args.rank} (attention + MLP), SFT {args.steps} steps, batch {args.batch_size}, "
        f"max length {args.max_length}, lr 2e-4, on {len(subset)} of {len(chunks)} train chunks (~60 words)",
        f"generations: {len(prompts)} test-split prompts x {args.tokens} tokens, default sampling, seeds 0..{len(prompts) - 1}",
        f"{torch.get_num_threads()} CPU thread(s)",
    ]
    print("\n".join(settings), flush=True)

    engine = studio.load()
    # Chunks of one novel: no end-of-text after each (the adapter would learn to stop early).
    td = TrainingData("text", [{"text": t, "eos": False} for t in subset], [str(GADSBY)])
    s = train_adapter(td, ADAPTER, max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                      rank=args.rank, save_steps=50)
    settings.append(f"adapter trained: loss {s['first_loss']:.3f} -> {s['final_loss']:.3f} "
                    f"({s['seconds']:.0f} s this run)")
    aset = adapters_for(engine)
    name = aset.load(ADAPTER).name
    lipo = parse_spec("lipogram:e")

    rows = []
    for label, view, filt in (("base", engine, None), ("base + lipogram filter", engine, lipo),
                              ("LoRA adapter", "adapter", None), ("adapter + filter", "adapter", lipo)):
        scorer = EngineView(engine, name) if view == "adapter" else engine
        sc = score_text(scorer, test, filt)
        texts, toks, secs = [], 0, 0.0
        for i, p in enumerate(prompts):
            kw = {"feed": SourcePlan(adapters=[(name, 1.0)]).build(engine, aset)} if view == "adapter" else {}
            r = engine.generate(p, filt, Settings(max_new_tokens=args.tokens, seed=i), **kw)
            texts.append(r.text)
            toks, secs = toks + r.tokens, secs + r.seconds
        rate, nwords = e_rate(texts)
        rows.append((label, sc.perplexity, sc.tokens, sc.disallowed, rate, nwords, toks / secs))
        print(f"  {label}: perplexity {sc.perplexity:.2f}, words with 'e' {100 * rate:.1f}%", flush=True)

    head = f"{'':<24} {'test perplexity':>15} {'words with e':>12} {'(of words)':>10} {'tok/s':>6}"
    lines = [head, "-" * len(head)]
    for label, ppl, ntok, dis, rate, nwords, tps in rows:
        lines.append(f"{label:<24} {ppl:15.2f} {100 * rate:11.1f}% {nwords:>10} {tps:6.1f}")
    lines.append(f"(perplexity over {rows[0][2]} test tokens; with the filter {rows[1][3]} test tokens "
                 f"are disallowed and left out)")
    text = "\n".join(settings + ["", *lines, "", PAPER, f"(total {time.perf_counter() - t0:.0f} s)"])
    print("\n" + text)
    out = ROOT / "bench" / "results" / "lipogram_table.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = "python bench/lipogram_table.py " + " ".join(sys.argv[1:])
    out.write_text(f"```\n$ {cmd.strip()}\n{text}\n```\n")


if __name__ == "__main__":
    main()
