"""`perec batch --in requests.jsonl --out results.jsonl`: bulk generation (studio/batch.py)."""

from __future__ import annotations

from studio.cli.common import emit


def batch_args(p) -> None:
    p.add_argument("--in", dest="inp", required=True, metavar="REQUESTS.jsonl",
                   help='one request per line: {"id", "prompt", "constraints", "form", "given", "mode", '
                        '"settings": {...}, "variants", "steering"}')
    p.add_argument("--out", required=True, metavar="RESULTS.jsonl",
                   help="results are appended here; ids already in it are skipped (resume)")
    p.add_argument("--backend", choices=["perec", "vllm"], default="perec",
                   help="perec: our engine with batched rows; vllm: vLLM with Perec's rules as a "
                        "logits processor (needs `make vllm`)")
    p.add_argument("--rows", type=int, default=8, help="requests decoded together (perec backend)")
    p.add_argument("--model", default=None, help="embedded default if omitted; a local path")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_batch(args) -> int:
    from studio.batch import run_batch as run

    p = run(args.inp, args.out, backend=args.backend, rows=args.rows, model=args.model,
            show=not args.no_progress)
    emit(args, {"done": p.done, "errors": p.errors, "tokens": p.tokens,
                "tokens_per_second": round(p.tokens_per_second, 2)},
         f"{p.done} request(s) written to {args.out} ({p.errors} error line(s)), "
         f"{p.tokens} tokens at {p.tokens_per_second:.1f} tokens/s")
    return 0


COMMANDS = [("batch", "run a JSONL file of requests, resuming where it stopped", batch_args, run_batch)]
