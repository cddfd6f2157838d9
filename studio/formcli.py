"""Poetic forms on the command line (loaded by ``cli._load_extensions``):

    perec generate --form haiku --prompt "autumn rain"
    perec generate --form couplet --given "So long as men can breathe or eyes can see,"
    perec check --form limerick --file poem.txt      per line: syllables, rhyme letter, violations

``--form`` takes what ``-c form:`` takes (a built-in, NAME+iambic, a custom form, and
``;end=.?!``); ``-c form:NAME`` works too.  In continue mode the prompt is the text
before the poem, which starts on a new line; in instruct mode it is the instruction.
"""

from __future__ import annotations

import sys

from studio.cli import ARGUMENT_HOOKS, CHECK_HOOKS, GENERATE_HOOKS, CliError, _constraint


def _form_args(p) -> None:
    p.add_argument("--form", default=None, metavar="NAME",
                   help="a poem of this form: haiku, couplet, quatrain, limerick, sonnet, NAME+iambic, "
                        "or custom SYLLABLES[/SCHEME][/STRESS] such as 5-7-5/ABA; append ';end=.?!' "
                        "to close the last line with one of those marks")
    p.add_argument("--given", action="append", default=None, metavar="LINE",
                   help="a line already written (repeat, or separate lines with newlines): it counts "
                        "against the form; the output holds only the new lines")


def _generate_args(p) -> None:
    _form_args(p)
    # None: a form picks a length that fits it; otherwise the usual default applies.
    p.set_defaults(max_new_tokens=None)


def _generate_hook(args, prompt, constraint):
    from studio.masks.forms import form_of, prepare, with_form
    from studio.decode.sampling import Settings

    c = with_form(constraint, getattr(args, "form", None), getattr(args, "given", None))
    fc = form_of(c)
    if fc is None:
        if args.max_new_tokens is None:
            args.max_new_tokens = Settings().max_new_tokens
        return prompt, c, None
    if prompt is None and not fc.given:
        raise CliError("no prompt: give --prompt TEXT (what comes before the poem, or the "
                       "instruction in instruct mode) or --given LINE")
    prompt, args.max_new_tokens = prepare(prompt or "", c, args.mode, args.max_new_tokens)
    for note in fc.notes():
        print(f"perec: note: {note}", file=sys.stderr)

    def post(result) -> None:
        # By construction a finished poem passes; a cut-short one says what is missing.
        vs = fc.check(result.text)
        if vs:
            result.message = "; ".join(filter(None, [result.message, vs[0].message]))
            print(f"perec: the poem is incomplete: {vs[0].message}", file=sys.stderr)

    return prompt, c, post


def _check_hook(args, text):
    if not getattr(args, "form", None):
        return None
    from constraints.formspec import FormConstraint, parse_form_arg

    name, end = parse_form_arg(args.form)
    fc = FormConstraint(name, args.given, end)
    report = fc.report(text)
    vs = fc.check(text)
    others = _constraint(args)
    more = others.check(text) if others is not None else []
    ok = not vs and not more
    rows = [report.table()]
    rows += [f"  - {v.where(text)}: {text[v.start:v.end]!r} {v.message} [{v.rule}]" for v in more]
    obj = {"form": fc.spec(), "ok": ok, "lines": report.to_dict()["lines"],
           "violations": [dict(v.to_dict(), where=v.where(text)) for v in vs + more]}
    return ok, obj, "\n".join(rows)


ARGUMENT_HOOKS.setdefault("generate", []).append(_generate_args)
ARGUMENT_HOOKS.setdefault("check", []).append(_form_args)
GENERATE_HOOKS.append(_generate_hook)
CHECK_HOOKS.append(_check_hook)
