"""`perec check` and `perec constraints`: no model, no torch, an answer in a blink.

`perec check` exits 0 when the text obeys every rule, 1 when it breaks one (each
violation listed with its position), 2 on bad input.  With --form it also prints the
scansion: per line, syllables, rhyme letter, sound and stress.
"""

from __future__ import annotations

from studio.cli.common import CliError, add_constraints, add_form, constraint_of, emit, read_input


def check_args(p) -> None:
    p.add_argument("--file", default=None, help="text file to check (stdin by default)")
    add_constraints(p)
    add_form(p)


def run_check(args) -> int:
    text = read_input(args.file)
    constraint = constraint_of(args)
    if args.form:
        return _check_form(args, text, constraint)
    if args.given:
        raise CliError("--given needs --form (the lines count against a form)")
    if constraint is None:
        raise CliError("nothing to check against: give at least one -c SPEC (or --form NAME)")
    vs = constraint.check(text)
    rows = [f"{v.where(text)}: {text[v.start:v.end]!r} {v.message} [{v.rule}]" for v in vs]
    summary = "ok: the text obeys " + constraint.describe() if not vs else f"{len(vs)} violation(s)"
    emit(args, {"ok": not vs, "constraints": constraint.spec(),
                "violations": [dict(v.to_dict(), where=v.where(text)) for v in vs]},
         "\n".join(rows + [summary]))
    return 0 if not vs else 1


def _check_form(args, text: str, others) -> int:
    from constraints.formspec import FormConstraint

    fc = FormConstraint.from_arg(args.form, args.given)
    report = fc.report(text)
    vs = fc.check(text)
    more = others.check(text) if others is not None else []
    ok = not vs and not more
    rows = [report.table()]
    rows += [f"  - {v.where(text)}: {text[v.start:v.end]!r} {v.message} [{v.rule}]" for v in more]
    emit(args, {"form": fc.spec(), "ok": ok, "lines": report.to_dict()["lines"],
                "violations": [dict(v.to_dict(), where=v.where(text)) for v in vs + more]}, "\n".join(rows))
    return 0 if ok else 1


def run_constraints(args) -> int:
    from constraints.base import entries

    es = entries()
    rows = [f"{e.name:<18} {e.level:<5} {e.description}  e.g. {e.example}" for e in es]
    emit(args, {"constraints": [{"name": e.name, "level": e.level, "description": e.description,
                                 "example": e.example} for e in es]}, "\n".join(rows))
    return 0


COMMANDS = [
    ("check", "list every rule the text breaks (exit 0 if it passes, 1 if not)", check_args, run_check),
    ("constraints", "list every constraint spec with a description and an example", lambda p: None,
     run_constraints),
]
