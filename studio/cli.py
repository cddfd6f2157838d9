"""`perec`: generate | candidates | check | score | constraints | bench | train-adapter | serve.

Every command takes --json for scripts.  Errors are one line on stderr and exit 2;
`perec check` exits 1 when the text breaks a rule.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

# Subcommands register here: name -> (help, run(args) -> exit code).  Each run function
# carries an ``add_arguments(parser)`` attribute, read when the parser is built.
COMMANDS: dict[str, tuple[str, Callable]] = {}


class CliError(Exception):
    """Bad input from the command line: printed as one line, exit 2."""


def command(name: str, help: str):
    def deco(fn):
        COMMANDS[name] = (help, fn)
        return fn

    return deco


def _quiet() -> None:
    # Progress bars and library warnings would break --json output and clutter the terminal.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass


def _emit(args, obj: dict, text: str | None = None) -> None:
    if args.json:
        print(json.dumps(obj, ensure_ascii=False))
    elif text is not None:
        print(text)


def _read_input(path: str | None) -> str:
    if path in (None, "-"):
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text") from None


def _constraint(args):
    from constraints.spec import parse_specs

    return parse_specs(args.constraint or [])


def _add_constraints(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--constraint", action="append", metavar="SPEC",
                   help="a constraint spec (repeat to combine with AND); see `perec constraints`")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None,
                   help="embedded default if omitted; a local path or a Hugging Face id")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--mode", choices=["continue", "instruct"], default="continue",
                   help="continue the text as written, or treat it as an instruction (chat template)")


def _engine(args):
    from studio.api import load

    return load(args.model, device=args.device)


# ------------------------------------------------------------------ generate


def _add_sampling(p: argparse.ArgumentParser) -> None:
    from studio.decode.sampling import Settings

    d = Settings()
    p.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
    p.add_argument("--min-new-tokens", type=int, default=d.min_new_tokens)
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--top-k", type=int, default=d.top_k, help="0 turns it off")
    p.add_argument("--top-p", type=float, default=d.top_p, help="1 turns it off")
    p.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    p.add_argument("--greedy", action="store_true", help="argmax decoding (loops under a lipogram)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)")


def _settings(args):
    from studio.decode.sampling import Settings

    return Settings(
        max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens,
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, greedy=args.greedy, seed=args.seed,
        stop=list(args.stop),
    )


def _prompt(args, required: bool = True) -> str | None:
    if args.prompt is not None:
        return args.prompt
    if args.prompt_file:
        return _read_input(args.prompt_file)
    if required:
        raise CliError("no prompt: give --prompt TEXT or --prompt-file FILE")
    return None


# Hooks that may rewrite a generate request before it runs (forms add one):
# fn(args, prompt or None, constraint) -> (prompt, constraint, postprocess(result) or None);
# sampling arguments are read after them, so a hook may set defaults (a form's length).
GENERATE_HOOKS: list[Callable] = []
# Hooks that add steering to a generate request (studio/steer.py: adapters, controllers):
# fn(args, engine) -> keyword arguments for Engine.stream (source=, controllers=)
STREAM_HOOKS: list[Callable] = []


@command("generate", "write text under constraints (streamed; --json for one object)")
def cmd_generate(args) -> int:
    constraint = _constraint(args)
    prompt = _prompt(args, required=not GENERATE_HOOKS)
    post = None
    for hook in GENERATE_HOOKS:
        prompt, constraint, post = hook(args, prompt, constraint)
    if prompt is None:
        _prompt(args)  # raises: no prompt
    settings = _settings(args)
    eng = _engine(args)
    extra: dict = {}
    for hook in STREAM_HOOKS:
        extra.update(hook(args, eng))
    gen = eng.stream(prompt, constraint, settings, args.mode, **extra)
    if args.json:
        result = gen.run()
        if post:
            post(result)
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        for piece in gen:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        result = gen.result
        if post:
            post(result)
    if result.stop_reason == "dead_end":
        print(f"perec: stopped early: {result.message}", file=sys.stderr)
        return 3
    return 0


def _generate_args(p):
    p.add_argument("--prompt", default=None, help="the text to continue (or the instruction)")
    p.add_argument("--prompt-file", default=None, help="read the prompt from a file (- for stdin)")
    _add_constraints(p)
    _add_model(p)
    _add_sampling(p)


cmd_generate.add_arguments = _generate_args


# ------------------------------------------------------------------ candidates


@command("candidates", "the next words (or tokens) the model would write, all obeying the constraints")
def cmd_candidates(args) -> int:
    constraint = _constraint(args)
    prompt = _prompt(args)
    from studio.candidates import next_candidates

    n = args.tokens or args.words
    if n < 1:
        raise CliError("--words / --tokens must be at least 1")
    cands = next_candidates(_engine(args), prompt, constraint, n=n, words=not args.tokens, mode=args.mode)
    lines = [f"{c.prob:8.4f}  {c.display}" for c in cands]
    _emit(args, {"prompt": prompt, "constraints": constraint.spec() if constraint else "",
                 "candidates": [c.to_dict() for c in cands]}, "\n".join(lines) or "(no candidates)")
    return 0


def _candidates_args(p):
    p.add_argument("--prompt", default=None)
    p.add_argument("--prompt-file", default=None)
    p.add_argument("--words", type=int, default=10, help="how many next words (default 10)")
    p.add_argument("--tokens", type=int, default=0, help="list next tokens instead of words")
    _add_constraints(p)
    _add_model(p)


cmd_candidates.add_arguments = _candidates_args


# ------------------------------------------------------------------ check

# Hooks that check with extra options (forms): fn(args, text) -> (ok, dict, str) or None
CHECK_HOOKS: list[Callable] = []


@command("check", "list every rule the text breaks (exit 0 if it passes, 1 if not)")
def cmd_check(args) -> int:
    text = _read_input(args.file)
    for hook in CHECK_HOOKS:
        out = hook(args, text)
        if out is not None:
            ok, obj, rendered = out
            _emit(args, obj, rendered)
            return 0 if ok else 1
    constraint = _constraint(args)
    if constraint is None:
        raise CliError("nothing to check against: give at least one -c SPEC")
    vs = constraint.check(text)
    rows = []
    for v in vs:
        rows.append(f"{v.where(text)}: {text[v.start:v.end]!r} {v.message} [{v.rule}]")
    summary = "ok: the text obeys " + constraint.describe() if not vs else f"{len(vs)} violation(s)"
    _emit(args, {"ok": not vs, "constraints": constraint.spec(),
                 "violations": [dict(v.to_dict(), where=v.where(text)) for v in vs]},
          "\n".join(rows + [summary]))
    return 0 if not vs else 1


def _check_args(p):
    p.add_argument("--file", default=None, help="text file to check (stdin by default)")
    _add_constraints(p)


cmd_check.add_arguments = _check_args


# ------------------------------------------------------------------ score


@command("score", "per-token perplexity of a text (with -c: renormalised over allowed tokens)")
def cmd_score(args) -> int:
    text = _read_input(args.file)
    from studio.scoring import score_text

    s = score_text(_engine(args), text, _constraint(args), prompt=args.prompt or "", window=args.window)
    msg = f"perplexity {s.perplexity:.2f} over {s.tokens} tokens"
    if s.constraints:
        msg += f" (renormalised under {s.constraints})"
    if s.disallowed:
        msg += f"; {s.disallowed} token(s) break the constraints and were left out"
    _emit(args, s.to_dict(), msg)
    return 0


def _score_args(p):
    p.add_argument("--file", default=None, help="text file to score (stdin by default)")
    p.add_argument("--prompt", default=None, help="context before the text (not scored)")
    p.add_argument("--window", type=int, default=1024, help="tokens per sliding window")
    _add_constraints(p)
    _add_model(p)


cmd_score.add_arguments = _score_args


# ------------------------------------------------------------------ constraints


@command("constraints", "list every constraint spec with a description and an example")
def cmd_constraints(args) -> int:
    from constraints.base import entries

    es = entries()
    rows = [f"{e.name:<18} {e.level:<5} {e.description}  e.g. {e.example}" for e in es]
    _emit(args, {"constraints": [{"name": e.name, "level": e.level, "description": e.description,
                                  "example": e.example} for e in es]}, "\n".join(rows))
    return 0


cmd_constraints.add_arguments = lambda p: None


# ------------------------------------------------------------------ bench, serve


@command("bench", "speed: our loop vs model.generate, constrained vs not (ratios in one run)")
def cmd_bench(args) -> int:
    from studio.benchmark import run_speed

    report = run_speed(_engine(args), tokens=args.tokens, repeats=args.repeats, spec=args.spec)
    _emit(args, report, report["table"])
    return 0


def _bench_args(p):
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--spec", default="lipogram:e", help="the constraint to time")
    _add_model(p)


cmd_bench.add_arguments = _bench_args


@command("serve", "launch the browser studio")
def cmd_serve(args) -> int:
    if args.host:
        os.environ["GRADIO_SERVER_NAME"] = args.host
    if args.port:
        os.environ["GRADIO_SERVER_PORT"] = str(args.port)
    from studio.ui import build_app

    build_app().launch(share=args.share)
    return 0


def _serve_args(p):
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--share", action="store_true")


cmd_serve.add_arguments = _serve_args


# ------------------------------------------------------------------ main


# Arguments added by extensions (studio/formcli.py): command -> [add_arguments(parser)].
ARGUMENT_HOOKS: dict[str, list[Callable]] = {}


def _load_extensions() -> None:
    import importlib

    for mod in ("studio.formcli", "models.train_cli", "studio.steer"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_extensions()
    parser = argparse.ArgumentParser(prog="perec", description="Write under constraints with a language model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, fn) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="one JSON object on stdout")
        fn.add_arguments(p)
        for extra in ARGUMENT_HOOKS.get(name, []):
            extra(p)
    return parser


def main(argv=None) -> int:
    _quiet()
    parser = build_parser()
    args = parser.parse_args(argv)
    from constraints.base import ImpossibleConstraint, SpecError

    from studio.decode.engine import PromptError

    try:
        from models.loading import ModelLoadError
    except ImportError:  # pragma: no cover
        ModelLoadError = CliError
    try:
        return COMMANDS[args.command][1](args)
    except (CliError, SpecError, ImpossibleConstraint, PromptError, ModelLoadError, ValueError) as e:
        print(f"perec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("perec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    # Run the importable module's main: extensions register their hooks on studio.cli,
    # not on this __main__ copy of it.
    from studio.cli import main as _main

    sys.exit(_main())
