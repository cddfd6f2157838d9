"""One request, one path: what a writer or a script asks for, and the one ``prepare`` step
that turns it into what the engine decodes.

The CLI, the Python API, the studio and ``perec batch`` each build a ``Request`` (prompt,
constraints, form and given lines, mode, settings, steering, variants, search width) and
call ``prepare``; nothing else assembles a generation.  ``prepare`` without an engine
validates only (no model is loaded): a bad spec, form, setting or count is refused with one
clear message before anything runs.

Forms: in continue mode the poem starts on its own line after the prompt and the given
lines; a given last line without a line break is a partial line the model continues.  In
instruct mode the given lines join the instruction.  The token budget fits the form
unless one is set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from constraints.base import And, Constraint, shown
from constraints.formspec import FormConstraint, split_draft
from constraints.forms import FormError
from constraints.spec import parse_specs

if TYPE_CHECKING:
    from studio.decode.engine import Engine
    from studio.decode.generation import Generation, Result

MODES = ("continue", "instruct")
# Candidate lines tried per line of a poem when the request says nothing (the search,
# studio/decode/search.py); chosen by bench/fudge_couplet.py --search 1 2 4 8.  Prose is
# decoded on one path unless a width is asked for.
DEFAULT_POEM_SEARCH = 4
# Steering strengths when a writer gives none (studio/steer.py applies them).
DEFAULT_BANK_STRENGTH = 3.0
DEFAULT_STEER_STRENGTH = 1.5
DEFAULT_ALPHA = 2.0
DEFAULT_DISC_STRENGTH = 2.0
SETTING_NAMES = ("max_new_tokens", "min_new_tokens", "temperature", "top_k", "top_p",
                 "repetition_penalty", "greedy", "seed", "stop", "max_backoffs")


class RequestError(ValueError):
    """A request that cannot run, in words (a bad field, a missing prompt)."""


# ---------------------------------------------------------------------- the request


@dataclass
class Steering:
    """Soft steering (studio/steer.py): adapters, word banks, prompt contrast, experts, a
    discriminator, or controller objects.  Values as ``studio.steer.steering`` takes them."""

    adapter: Any = None  # 'DIR[:W]', (name, w), a list of them, or an AdapterSet
    bank: Any = None  # 'FILE[:S]', a list of words, WordBank(s)
    steer: Any = None  # '"TEXT"[:S]' or a PromptContrast
    expert: Any = None  # (expert, anti[, alpha]) or an ExpertAntiExpert
    discriminator: Any = None  # 'A.txt,B.txt[:S]', 'FILE.csv', 'DIR' or a controller
    controllers: list = field(default_factory=list)

    def is_off(self) -> bool:
        return all(v in (None, [], (), "") for v in (self.adapter, self.bank, self.steer, self.expert,
                                                     self.discriminator, self.controllers))

    def build(self, engine) -> dict:
        """``feed`` and ``controllers`` for the engine (fresh controller state each call)."""
        if self.is_off():
            return {}
        from studio.steer import steering

        return steering(engine, adapter=self.adapter, bank=self.bank, steer=self.steer, expert=self.expert,
                        discriminator=self.discriminator, controllers=self.controllers)


@dataclass
class Request:
    prompt: str = ""
    constraints: Any = None  # a spec string, a list of specs (ANDed), a Constraint, or None
    form: Any = None  # a form name or spec ('haiku', 'couplet-iambic;end=.?!'), a FormConstraint
    given: Any = None  # lines already written (a list; or one string, whose last line
    # without a line break is a partial line the poem goes on from)
    mode: str = "continue"
    settings: dict = field(default_factory=dict)  # Settings fields; max_new_tokens None: fit the form
    steering: Steering | None = None
    variants: int = 1  # continuations decoded side by side
    search: int | None = None  # candidate lines per line, decoded as one batch (None: the default)
    plan_ends: bool = True  # a search writes a line again, its end word chosen first, when the
    # model would not have said the last word there (studio/decode/search.py)
    particles: bool = True  # a search resamples its rows by what the masks cost (search.py)
    particle_weight: str = "likelihood"  # what a particle weighs: "likelihood" or "mass" (search.py)
    model: str | None = None  # None: the embedded model
    id: str | None = None  # the caller's name for it (perec batch)

    @classmethod
    def from_dict(cls, d: dict) -> "Request":
        """A request from JSON (a ``perec batch`` line, an endpoint): unknown keys are
        refused by name; settings may be nested or at the top level."""
        if not isinstance(d, dict):
            raise RequestError(f"a request must be a JSON object (got {type(d).__name__})")
        names = {f.name for f in fields(cls)}
        if not isinstance(d.get("settings") or {}, dict):
            raise RequestError(f"'settings' must be an object (got {type(d['settings']).__name__})")
        settings = dict(d.get("settings") or {})
        kw = {}
        for k, v in d.items():
            if k == "settings":
                continue
            if k in SETTING_NAMES:
                settings[k] = v
            elif k in names and k != "steering":
                kw[k] = v
            elif k == "steering":
                if not isinstance(v, dict):
                    raise RequestError("'steering' must be an object")
                unknown = set(v) - {f.name for f in fields(Steering)} - {"controllers"}
                if unknown:
                    names = ", ".join(shown(k) for k in sorted(map(str, unknown)))
                    raise RequestError(f"unknown steering field(s): {names}")
                kw["steering"] = Steering(**v)
            else:
                raise RequestError(f"unknown request field {shown(k)}")
        if "id" in kw and kw["id"] is not None:
            kw["id"] = str(kw["id"])
        return cls(settings=settings, **kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        if isinstance(self.constraints, Constraint):
            d["constraints"] = self.constraints.spec()
        if isinstance(self.form, FormConstraint):
            d["form"] = self.form.spec()
        d["steering"] = None if self.steering is None or self.steering.is_off() else {
            k: v for k, v in asdict(self.steering).items() if isinstance(v, (str, int, float, list, tuple))}
        return d


# ---------------------------------------------------------------------- prepared


@dataclass
class Prepared:
    """What the engine runs: the constraint (form included), the prompt the model
    continues, the settings (budget fitted), notes for the writer, and the steering."""

    request: Request
    constraint: Constraint | None
    form: FormConstraint | None
    prompt: str
    settings: Any  # studio.decode.settings.Settings
    notes: list[str] = field(default_factory=list)
    steer: dict = field(default_factory=dict)

    @property
    def search(self) -> int:
        """The search width this request decodes with."""
        if self.request.search is not None:
            return self.request.search
        return DEFAULT_POEM_SEARCH if self.form is not None and self.request.variants == 1 else 1

    def stream(self, engine: "Engine"):
        """A Generation, or a LineSearch when the search width is above one (both are read
        the same way: iterate for text, ``result``, ``cancel()``)."""
        if self.search > 1:
            from studio.decode.search import LineSearch

            return LineSearch(engine, self.prompt, self.constraint, self.settings, self.request.mode,
                              width=self.search, plan_ends=self.request.plan_ends,
                              particles=self.request.particles,
                              particle_weight=self.request.particle_weight, **self.steer)
        return engine.stream(self.prompt, self.constraint, self.settings, self.request.mode, **self.steer)

    def generate(self, engine: "Engine") -> "Result":
        return self.finish(self.stream(engine).run())

    def variants(self, engine: "Engine") -> list["Result"]:
        return [self.finish(r) for r in engine.variants(self.prompt, self.constraint, self.settings,
                                                        self.request.mode, k=self.request.variants,
                                                        **self.steer)]

    def finish(self, result: "Result") -> "Result":
        """By construction a finished poem passes its form; a cut-short one says what is
        missing in the result's message."""
        if self.form is not None and result is not None:
            vs = self.form.check(result.text)
            if vs:
                result.message = "; ".join(filter(None, [result.message, f"the poem is incomplete: {vs[0].message}"]))
        return result


def as_constraint(constraints) -> Constraint | None:
    """A spec string, a list of specs (ANDed), a Constraint, or None."""
    if constraints is None or isinstance(constraints, Constraint):
        return constraints
    if isinstance(constraints, str):
        return parse_specs([constraints]) if constraints.strip() else None
    if isinstance(constraints, (list, tuple)):
        bad = [c for c in constraints if not isinstance(c, str)]
        if bad:
            raise RequestError(f"constraints must be spec strings (got {type(bad[0]).__name__})")
        return parse_specs([c for c in constraints if c and c.strip()])
    raise RequestError(f"constraints must be a spec string, a list of them or a Constraint "
                       f"(got {type(constraints).__name__})")


def prepare(request: Request, engine: "Engine | None" = None) -> Prepared:
    """Validate ``request`` and turn it into a Prepared one; with an engine, steering is
    loaded too (adapters, banks, discriminators).  Raises one clear error per problem."""
    from studio.decode.settings import Settings

    r = request
    if r.mode not in MODES:
        raise RequestError(f"unknown mode {shown(r.mode)} (use continue or instruct)")
    if not isinstance(r.prompt, str):
        raise RequestError("prompt must be a string")
    for name in ("variants", "search"):
        v = getattr(r, name)
        if name == "search" and v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise RequestError(f"{name} must be a positive integer (got {v!r})")
    for name in ("plan_ends", "particles"):
        if not isinstance(getattr(r, name), bool):
            raise RequestError(f"{name} must be true or false (got {getattr(r, name)!r})")
    from studio.decode.search import PARTICLE_WEIGHTS

    if not isinstance(r.particle_weight, str) or r.particle_weight not in PARTICLE_WEIGHTS:
        raise RequestError(f"particle_weight must be one of {', '.join(PARTICLE_WEIGHTS)} "
                           f"(got {str(r.particle_weight)[:40]!r})")
    if r.variants > 1 and (r.search or 1) > 1:
        raise RequestError("ask for variants or a search width, not both (each variant is one path)")
    if not isinstance(r.settings, dict):
        raise RequestError("settings must be a mapping of setting names to values")
    unknown = set(r.settings) - set(SETTING_NAMES)
    if unknown:
        raise RequestError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    constraint = with_form(as_constraint(r.constraints), r.form, r.given)
    fc = form_of(constraint)
    prompt, budget = poem_prompt(r.prompt, fc, r.mode)
    values = dict(r.settings)
    if values.get("max_new_tokens") is None:
        values["max_new_tokens"] = budget if budget is not None else fitting_budget(constraint, engine)
    try:
        settings = Settings.from_dict(values)
    except TypeError as e:
        raise RequestError(f"bad setting: {e}") from None
    notes = fc.notes() if fc is not None else []
    steer = r.steering.build(engine) if engine is not None and r.steering is not None else {}
    return Prepared(r, constraint, fc, prompt, settings, notes, steer)


# ---------------------------------------------------------------------- budgets

BUDGETS = (80, 160, 320, 640, 1280)  # tried in turn when counts need more than the default


def fitting_budget(constraint: Constraint | None, engine=None) -> int:
    """The token budget when none is asked for: the default, or for structure rules (exactly
    five sentences of twelve words) and grammars (a schema of many required fields) the
    first of BUDGETS whose two thirds their own plan accepts.  Without an
    engine (validation only) the default; a budget still too small is refused, with the
    reason, when the generation is built."""
    from constraints.base import ImpossibleConstraint
    from constraints.grammar import GrammarRule
    from constraints.structure import StructureRule

    from studio.decode.settings import Settings

    default = Settings().max_new_tokens
    planned = (StructureRule, GrammarRule)
    if engine is None or constraint is None or not any(isinstance(c, planned) for c in constraint.leaves()):
        return default
    from studio.decode.maskset import compile_masks

    masks = compile_masks(constraint, engine.vocab)
    for budget in BUDGETS:
        try:
            # Room to write, not only the fewest tokens the counts need (which only forced
            # one-token words would meet): the plan must fit in two thirds of the budget.
            masks.check_budget(budget * 2 // 3)
            return budget
        except ImpossibleConstraint:
            continue
    return default


# ---------------------------------------------------------------------- forms


def form_of(constraint: Constraint | None) -> FormConstraint | None:
    if constraint is None:
        return None
    return next((c for c in constraint.leaves() if isinstance(c, FormConstraint)), None)


def with_form(constraint: Constraint | None, form=None, given=None) -> Constraint | None:
    """``constraint`` and a form (a name, 'NAME;end=.?!;lenient', or a FormConstraint),
    with the given lines: a list of complete lines, or a string of them whose last line
    without a line break is partial (the poem continues it: "Autumn wind" is three of a
    haiku's first five syllables).  Given lines without a form extend the form already in
    ``constraint``."""
    have = form_of(constraint)
    if form in (None, "") and not given:
        return constraint
    if form in (None, "") and have is None:
        raise FormError("given lines need a form (--form NAME, form=..., or -c form:NAME)")
    lines, partial = split_draft(given) if isinstance(given, str) else (given, "")
    if isinstance(form, FormConstraint):
        fc = FormConstraint(form.form, lines or form.given, form.end, partial or form.partial, form.reading)
    elif form not in (None, ""):
        if not isinstance(form, str):
            raise FormError(f"form must be a form name or spec (got {type(form).__name__})")
        fc = FormConstraint.from_arg(form, lines, partial)
    else:
        fc = FormConstraint(have.form, lines, have.end, partial, have.reading)
    rest = [c for c in (constraint.leaves() if constraint is not None else []) if c is not have]
    return And(*rest, fc) if rest else fc


def token_budget(fc: FormConstraint) -> int:
    """Enough new tokens for the form's new lines (words of a few tokens, marks, breaks)."""
    new = fc.form.syllables[len(fc.given):]
    return 2 * sum(new) + 4 * len(new) + 8


def poem_prompt(prompt: str, fc: FormConstraint | None, mode: str) -> tuple[str, int | None]:
    """The prompt and token budget for a form (the prompt as is, no budget, without one).
    The writer's text ends the prompt: the given lines, then the partial line (no break
    after it: the model goes on from it)."""
    if fc is None:
        return prompt, None
    prompt = prompt or ""
    if mode == "instruct":
        if fc.written:
            prompt = (prompt.rstrip() + "\n\n" if prompt.strip() else "") + \
                f"Continue this {fc.form.name or 'poem'}, which begins:\n" + fc.written
    else:
        prompt = (prompt.rstrip() + "\n" if prompt.strip() else "") + fc.written
    return prompt, token_budget(fc)
