"""`perec bench`, `perec serve`, `perec train-adapter`."""

from __future__ import annotations

import json
import os
import sys

from studio.cli.common import add_model, emit, engine_of


def bench_args(p) -> None:
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per row (the median is reported)")
    p.add_argument("--spec", default="lipogram:e", help="the constraint to time")
    add_model(p, mode=False)


def run_bench(args) -> int:
    from studio.benchmark import run_speed

    report = run_speed(engine_of(args), tokens=args.tokens, repeats=args.repeats, spec=args.spec)
    emit(args, report, report["table"])
    return 0


def serve_args(p) -> None:
    p.add_argument("--host", default=None,
                   help="the address to listen on (default 127.0.0.1; any other than a loopback "
                        "address is reachable from other machines, so Space rules apply)")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--share", action="store_true", help="a public link (Space rules apply)")
    p.add_argument("--local-rules", action="store_true",
                   help="keep local rules (local paths, training, one owner) even where other "
                        "machines can reach the server; the same as PEREC_SPACE=0")


def run_serve(args) -> int:
    if args.host:
        os.environ["GRADIO_SERVER_NAME"] = args.host
    if args.port:
        os.environ["GRADIO_SERVER_PORT"] = str(args.port)
    if args.local_rules:
        os.environ["PEREC_SPACE"] = "0"  # the writer's explicit opt-out (studio.ui.config.rules_for)
    from studio.ui import build_app
    from studio.ui.config import rules_for

    share = True if args.share else None  # None: gradio's own GRADIO_SHARE, read the same way by rules_for
    space, _why = rules_for(args.host, share)
    build_app(space=space).launch(share=share)
    return 0


def train_args(p) -> None:
    p.add_argument("--data", required=True, help="a .txt/.md/.jsonl file or a directory of them")
    p.add_argument("--out", required=True, help="the adapter directory (checkpoints go inside)")
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--method", choices=["auto", "sft", "dpo"], default="auto",
                   help="auto: DPO for chosen/rejected pairs, SFT for text")
    p.add_argument("--lr", type=float, default=None, help="learning rate (2e-4 SFT, 5e-5 DPO)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-length", type=int, default=96, help="tokens per example")
    p.add_argument("--save-steps", type=int, default=50, help="checkpoint every N steps")
    p.add_argument("--max-examples", type=int, default=None, help="train on the first N examples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="embedded default if omitted; a local model directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (loss lines only)")


def run_train(args) -> int:
    """Train a LoRA adapter with trl on the embedded model (or --model).  Shows a progress bar
    and the loss; run it again with the same --out to resume from the last checkpoint.  The
    adapter is usable at once: `perec generate --adapter DIR`."""
    from models.train import train_adapter

    def echo(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    summary = train_adapter(
        args.data, args.out, model=args.model, max_steps=args.max_steps, rank=args.rank,
        method=args.method, learning_rate=args.lr, batch_size=args.batch_size,
        max_length=args.max_length, save_steps=args.save_steps, max_examples=args.max_examples,
        seed=args.seed, echo=echo, bar=not args.no_progress,
    )
    if args.json:
        print(json.dumps(summary))
    else:
        loss = summary["final_loss"]
        print(f"adapter saved to {summary['path']} ({summary['steps']} steps, final loss "
              f"{loss:.4f}, {summary['seconds']} s); use it with --adapter {args.out}"
              if loss is not None else f"adapter saved to {summary['path']}")
    return 0


COMMANDS = [
    ("bench", "speed: our loop vs model.generate, constrained vs not (medians of interleaved runs)",
     bench_args, run_bench),
    ("serve", "launch the browser studio", serve_args, run_serve),
    ("train-adapter", "train a LoRA adapter with trl (SFT on text, DPO on chosen/rejected pairs)",
     train_args, run_train),
]
