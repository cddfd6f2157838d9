"""What the commands share: options, reading input, printing, and the one error type.

Nothing here imports torch: `perec check`, `perec constraints` and `--help` stay light.
"""

from __future__ import annotations

import argparse
import json
import sys


class CliError(Exception):
    """Bad input from the command line: printed as one line, exit 2."""


# The exit codes, as every command's --help lists them (and the README).
OK, BROKEN_RULE, BAD_INPUT, DEAD_END, FAILED, INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = f"""exit codes:
  {OK}    done (perec check: the text obeys every rule)
  {BROKEN_RULE}    perec check: the text breaks a rule (each violation is listed)
  {BAD_INPUT}    bad usage or input: an option, a spec, a setting, a file or model path that is
       not there or not the right kind (one line on stderr)
  {DEAD_END}    perec generate: a dead end, the rules left no word to write (the text so far is kept)
  {FAILED}    the environment failed: a file that cannot be read or written, a backend (vLLM)
       or model that fails to start, out of memory (one line on stderr; PEREC_DEBUG=1 shows
       the traceback)
  {INTERRUPTED}  interrupted (Ctrl-C)
A closed output pipe (`perec generate ... | head`) ends the command quietly with 0."""

# Paths the writer named that are not there or not the right kind: bad input, not a fault.
_BAD_PATHS = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


def failure(e: BaseException) -> tuple[str, int]:
    """The one line (without the ``perec:`` prefix) and the exit code for an exception
    that ends a command: the one place the CLI turns errors into what a writer reads."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", INTERRUPTED
    if isinstance(e, (CliError, ValueError)):
        # SpecError, ImpossibleConstraint, FormError, PromptError, RequestError,
        # ModelLoadError, LimitError and bad settings are all ValueErrors with a readable message.
        return f"error: {_one_line(e)}", BAD_INPUT
    if isinstance(e, OSError):
        what = e.strerror.lower() if e.strerror else _one_line(e)
        where = f"{e.filename}: {what}" if e.filename else f"{what} (reading or writing a file)"
        return f"error: {where}", BAD_INPUT if isinstance(e, _BAD_PATHS) else FAILED
    if isinstance(e, MemoryError):
        return "error: out of memory", FAILED
    return f"error: {type(e).__name__}: {_one_line(e)}", FAILED


def _one_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = "; ".join(lines) if lines else type(e).__name__
    return text if len(text) <= 500 else text[:497] + "..."


class Parser(argparse.ArgumentParser):
    """argparse with the exit codes in every help, and a usage error in one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("epilog", EXIT_CODES)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(BAD_INPUT, f"perec: error: {message} (see `{self.prog} --help`)\n")


def emit(args, obj: dict, text: str | None = None) -> None:
    if args.json:
        print(json.dumps(obj, ensure_ascii=False))
    elif text is not None:
        print(text)


def read_input(path: str | None) -> str:
    if path in (None, "-"):
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{path} is a directory, not a text file") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text") from None


def add_constraints(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--constraint", action="append", metavar="SPEC",
                   help="a constraint spec (repeat to combine with AND); see `perec constraints`")


def constraint_of(args):
    from constraints.spec import parse_specs

    return parse_specs(args.constraint or [])


def add_model(p: argparse.ArgumentParser, mode: bool = True) -> None:
    p.add_argument("--model", default=None,
                   help="embedded default if omitted; a local path or a Hugging Face id")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1 ...")
    if mode:
        p.add_argument("--mode", choices=["continue", "instruct"], default="continue",
                       help="continue the text as written, or treat it as an instruction (chat template)")


def add_prompt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", default=None, help="the text to continue (or the instruction)")
    p.add_argument("--prompt-file", default=None, help="read the prompt from a file (- for stdin)")


def prompt_of(args, required: bool = True) -> str | None:
    if args.prompt is not None:
        return args.prompt
    if args.prompt_file:
        return read_input(args.prompt_file)
    if required:
        raise CliError("no prompt: give --prompt TEXT or --prompt-file FILE")
    return None


def add_form(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", default=None, metavar="NAME",
                   help="a poem of this form: haiku, couplet, quatrain, limerick, sonnet, NAME+iambic, "
                        "or custom SYLLABLES[/SCHEME][/STRESS] such as 5-7-5/ABA; append ';end=.?!' "
                        "to close the last line with one of those marks")
    p.add_argument("--given", action="append", default=None, metavar="LINE",
                   help="a line already written (repeat, or separate lines with newlines): it counts "
                        "against the form; the output holds only the new lines")


def add_sampling(p: argparse.ArgumentParser) -> None:
    from studio.decode.settings import Settings

    d = Settings()
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help=f"the budget (default {d.max_new_tokens}; with a form, one that fits it)")
    p.add_argument("--min-new-tokens", type=int, default=d.min_new_tokens)
    p.add_argument("--temperature", type=float, default=d.temperature)
    p.add_argument("--top-k", type=int, default=d.top_k, help="0 turns it off")
    p.add_argument("--top-p", type=float, default=d.top_p, help="1 turns it off")
    p.add_argument("--repetition-penalty", type=float, default=d.repetition_penalty)
    p.add_argument("--greedy", action="store_true", help="argmax decoding (loops under a lipogram)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string (repeatable)")


def settings_of(args) -> dict:
    return dict(max_new_tokens=args.max_new_tokens, min_new_tokens=args.min_new_tokens,
                temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                repetition_penalty=args.repetition_penalty, greedy=args.greedy, seed=args.seed,
                stop=list(args.stop))


def add_steering(p: argparse.ArgumentParser, experts: bool = True) -> None:
    from studio.request import DEFAULT_ALPHA, DEFAULT_BANK_STRENGTH, DEFAULT_STEER_STRENGTH

    g = p.add_argument_group("steering (adapters and controllers)")
    g.add_argument("--adapter", action="append", default=[], metavar="DIR[:WEIGHT]",
                   help="mix in a LoRA adapter: base + WEIGHT*(adapter - base) (repeatable; weight 1)")
    g.add_argument("--bank", action="append", default=[], metavar="FILE[:STRENGTH]",
                   help=f"favour the words listed in FILE (strength {DEFAULT_BANK_STRENGTH}; negative avoids)")
    g.add_argument("--steer", default=None, metavar='"TEXT"[:STRENGTH]',
                   help=f"prompt contrast toward a description (strength {DEFAULT_STEER_STRENGTH})")
    if experts:
        g.add_argument("--expert", default=None, metavar="DIR", help="DExperts: the expert adapter")
        g.add_argument("--anti-expert", default=None, metavar="DIR", help="DExperts: the anti-expert adapter")
        g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="DExperts strength")
        g.add_argument("--discriminator", default=None, metavar="A.txt,B.txt|FILE.csv|DIR[:STRENGTH]",
                       help="FUDGE guidance by a classifier trained now on the examples (toward A)")


def steering_of(args):
    """The request's Steering from the steering options (None when all are off)."""
    from studio.request import Steering

    expert, anti = getattr(args, "expert", None), getattr(args, "anti_expert", None)
    if bool(expert) != bool(anti):
        raise CliError("--expert and --anti-expert go together")
    banks = None
    if args.bank:
        from studio.steer import bank_of

        banks = [bank_of(b) for b in args.bank]
    s = Steering(adapter=args.adapter or None, bank=banks, steer=args.steer,
                 expert=(expert, anti, args.alpha) if expert else None,
                 discriminator=getattr(args, "discriminator", None))
    return None if s.is_off() else s


def engine_of(args):
    from studio.api import load

    return load(args.model, device=args.device)
