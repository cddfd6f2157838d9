"""`perec`: generate | candidates | score | check | constraints | batch | bench | serve |
train-adapter.

Every command takes --json for scripts.  Every error is one line on stderr, never a
traceback; the exit codes (common.EXIT_CODES, listed in every --help) say what kind:
2 bad input, 4 an environment fault, 1 a rule broken (`perec check`), 3 a dead end
(`perec generate`), 130 interrupted.  common.failure is the one place errors become lines.  The commands are listed here, module
by module (studio/cli/*.py): no registration by import side effect.  Only a command's own
run function imports torch, so `perec check`, `perec constraints` and `--help` stay light.
"""

from __future__ import annotations

import argparse
import os
import sys

from studio.cli import batch, check, tools, write
from studio.cli.common import Parser, failure

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
    parser = Parser(prog="perec", description="Write under constraints with a language model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, help_, add_arguments, _run in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="one JSON object on stdout")
        add_arguments(p)
    return parser


def main(argv=None) -> int:
    try:
        _quiet()
        args = build_parser().parse_args(argv)
        run = next(r for name, _h, _a, r in COMMANDS if name == args.command)
        code = run(args)
        sys.stdout.flush()  # here, so a closed pipe is met inside the try, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly.  Point stdout at /dev/null, or the
        # interpreter's final flush would fail again and print "Exception ignored".
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit:
        raise  # argparse: --help (0), or a usage error already printed in one line (2)
    except BaseException as e:  # noqa: BLE001  (every error a writer can meet becomes one line)
        if os.environ.get("PEREC_DEBUG") and not isinstance(e, KeyboardInterrupt):
            raise
        line, code = failure(e)
        print(f"perec: {line}", file=sys.stderr)
        return code
