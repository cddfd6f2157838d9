"""`perec generate`, `perec candidates`, `perec score`: the commands that run the model.

Each builds a ``studio.request.Request`` from its options and runs it through ``prepare``,
as the API and the studio do.  torch is imported only when a command runs.
"""

from __future__ import annotations

import json
import sys

from studio.cli.common import (CliError, add_constraints, add_form, add_model, add_prompt, add_sampling,
                               add_steering, constraint_of, emit, engine_of, prompt_of, read_input,
                               settings_of, steering_of)


# ------------------------------------------------------------------ generate


def generate_args(p) -> None:
    add_prompt(p)
    add_constraints(p)
    add_form(p)
    add_model(p)
    add_sampling(p)
    p.add_argument("--variants", type=int, default=1, metavar="K",
                   help="write K continuations side by side, decoded as one batch (seeds SEED, SEED+1, ...)")
    p.add_argument("--search", type=int, default=None, metavar="K",
                   help="try each line K ways in one batch and keep the one the model finds likeliest "
                        "(default: 4 for a poem, 1 otherwise)")
    add_steering(p)


def run_generate(args) -> int:
    from studio.request import Request, prepare

    prompt = prompt_of(args, required=False)
    if prompt is None and not (args.form and args.given):
        if args.form:
            raise CliError("no prompt: give --prompt TEXT (what comes before the poem, or the "
                           "instruction in instruct mode) or --given LINE")
        prompt_of(args)  # raises: no prompt
    req = Request(prompt=prompt or "", constraints=args.constraint, form=args.form, given=args.given,
                  mode=args.mode, settings=settings_of(args), steering=steering_of(args),
                  variants=args.variants, search=args.search, model=args.model)
    prepare(req)  # refuse bad input before loading the model
    eng = engine_of(args)
    prepared = prepare(req, eng)
    for note in prepared.notes:
        print(f"perec: note: {note}", file=sys.stderr)
    if req.variants > 1:
        results = prepared.variants(eng)
        if args.json:
            print(json.dumps({"variants": [r.to_dict() for r in results]}, ensure_ascii=False))
        else:
            for i, r in enumerate(results, 1):
                print(f"--- variant {i} (seed {r.seed})\n{r.text}")
    else:
        gen = prepared.stream(eng)
        if args.json:
            result = prepared.finish(gen.run())
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            for piece in gen:
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
            result = prepared.finish(gen.result)
        results = [result]
    code = 0
    for r in results:
        if r.stop_reason == "dead_end":
            print(f"perec: stopped early: {r.message}", file=sys.stderr)
            code = 3
        elif prepared.form is not None and "incomplete" in r.message:
            print(f"perec: {r.message}", file=sys.stderr)
    return code


# ------------------------------------------------------------------ candidates


def candidates_args(p) -> None:
    add_prompt(p)
    p.add_argument("--words", type=int, default=10, help="how many next words (default 10)")
    p.add_argument("--tokens", type=int, default=0, help="list next tokens instead of words")
    add_constraints(p)
    add_model(p)


def run_candidates(args) -> int:
    constraint = constraint_of(args)
    prompt = prompt_of(args)
    n = args.tokens or args.words
    if n < 1:
        raise CliError("--words / --tokens must be at least 1")
    from studio.next_words import next_candidates

    cands = next_candidates(engine_of(args), prompt, constraint, n=n, words=not args.tokens, mode=args.mode)
    lines = [f"{c.prob:8.4f}  {c.display}" for c in cands]
    emit(args, {"prompt": prompt, "constraints": constraint.spec() if constraint else "",
                "candidates": [c.to_dict() for c in cands]}, "\n".join(lines) or "(no candidates)")
    return 0


# ------------------------------------------------------------------ score


def score_args(p) -> None:
    p.add_argument("--file", default=None, help="text file to score (stdin by default)")
    p.add_argument("--prompt", default=None, help="context before the text (not scored)")
    p.add_argument("--window", type=int, default=1024, help="tokens per sliding window")
    add_constraints(p)
    add_model(p, mode=False)
    add_steering(p, experts=False)


def run_score(args) -> int:
    text = read_input(args.file)
    constraint = constraint_of(args)
    steering = steering_of(args)
    from studio.scoring import score_text

    eng = engine_of(args)
    s = score_text(eng, text, constraint, prompt=args.prompt or "", window=args.window,
                   steer=steering.build(eng) if steering is not None else None)
    msg = f"perplexity {s.perplexity:.2f} over {s.tokens} tokens"
    if s.constraints:
        msg += f" (renormalised under {s.constraints})"
    if s.steering:
        msg += f"; steered by {s.steering}"
    if s.disallowed:
        msg += f"; {s.disallowed} token(s) break the constraints and were left out"
    emit(args, s.to_dict(), msg)
    return 0


COMMANDS = [
    ("generate", "write text under constraints (streamed; --json for one object)", generate_args, run_generate),
    ("candidates", "the next words (or tokens) the model would write, all obeying the constraints",
     candidates_args, run_candidates),
    ("score", "per-token perplexity of a text (with -c: renormalised over allowed tokens; "
              "--adapter/--bank/--steer: under the steered model)", score_args, run_score),
]
