"""`perec`: generate | candidates | score | check | constraints | batch | bench | serve |
train-adapter.

Every command takes --json for scripts.  Errors are one line on stderr and exit 2;
`perec check` exits 1 when the text breaks a rule.  The commands are listed here, module
by module (studio/cli/*.py): no registration by import side effect.  Only a command's own
run function imports torch, so `perec check`, `perec constraints` and `--help` stay light.
"""

from __future__ import annotations

import argparse
import os
import sys

from studio.cli import batch, check, tools, write
from studio.cli.common import CliError

COMMANDS = write.COMMANDS + check.COMMANDS + batch.COMMANDS + tools.COMMANDS


def _quiet() -> None:
    # Progress bars and library warnings would break --json output and clutter the terminal.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    if "transformers" in sys.modules:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perec", description="Write under constraints with a language model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_, add_arguments, _run in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="one JSON object on stdout")
        add_arguments(p)
    return parser


def main(argv=None) -> int:
    _quiet()
    args = build_parser().parse_args(argv)
    run = next(r for name, _h, _a, r in COMMANDS if name == args.command)
    try:
        return run(args)
    except (CliError, ValueError) as e:
        # SpecError, ImpossibleConstraint, FormError, PromptError, RequestError,
        # ModelLoadError and bad settings are all ValueErrors with a readable message.
        print(f"perec: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("perec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0

