"""The headless Python API: the same engine the CLI and the studio use.

    from studio import generate, stream, candidates, check, score
    r = generate("The old house on the hill", "lipogram:e", max_new_tokens=80, seed=1)
    for piece in stream("Once", "lipogram:e"): print(piece, end="")

``constraints`` is a spec string, a list of specs (joined with &), a Constraint, or None.
``model`` is None for the embedded default, a local path, or a Hugging Face id.

Poems: ``generate("autumn rain", form="haiku")``; ``form=`` takes what the ``form:`` spec
takes (``"couplet-iambic;end=.?!"``) and ``given=[...]`` lines already written, which count
against the form (``text`` holds only the new lines).  ``generate(p, "form:haiku")`` works
too; either way the poem starts on its own line and the token budget fits the form.
"""

from __future__ import annotations

import threading

from constraints.base import Constraint, Violation
import constraints.formspec  # noqa: F401  (registers the form: spec)

from studio.candidates import Candidate, next_candidates
from studio.decode.engine import Engine, Generation, Result
from studio.decode.sampling import Settings
from studio.scoring import Score, score_text
from constraints.spec import parse_specs

_engines: dict[tuple, Engine] = {}
_lock = threading.Lock()


def load(model: str | None = None, device: str | None = "auto", dtype=None,
         allow_local: bool = True) -> Engine:
    """The engine for ``model`` (loaded once per process and shared)."""
    from models.loading import load_model

    lm = load_model(model, device=device, dtype=dtype, allow_local=allow_local)
    key = (lm.name, str(lm.device), str(lm.dtype))
    with _lock:
        if key not in _engines:
            _engines[key] = Engine(lm)
        return _engines[key]


def as_constraint(constraints) -> Constraint | None:
    if constraints is None or isinstance(constraints, Constraint):
        return constraints
    if isinstance(constraints, str):
        return parse_specs([constraints]) if constraints.strip() else None
    return parse_specs([c for c in constraints if c and c.strip()])


def _form_request(constraints, prompt, mode, form, given, settings):
    """A form (studio/formmask.py) joins the constraints with its given lines; the poem
    starts on its own line, and the token budget fits the form unless one is set."""
    from studio.masks.forms import prepare, with_form

    c = with_form(as_constraint(constraints), form, given)
    prompt, n = prepare(prompt, c, mode, settings.get("max_new_tokens"))
    if n is not None:
        settings = dict(settings, max_new_tokens=n)
    return c, prompt, settings


def stream(prompt: str, constraints=None, *, model: str | None = None, mode: str = "continue",
           engine: Engine | None = None, form=None, given=None,
           adapter=None, bank=None, steer=None, controllers=None,
           **settings) -> Generation:
    """A Generation: iterate it for text pieces as they are decoded; ``.result`` after;
    ``.cancel()`` from another thread stops it within one step.  ``adapter``, ``bank``,
    ``steer`` and ``controllers`` steer it softly (studio/steer.py)."""
    constraints, prompt, settings = _form_request(constraints, prompt, mode, form, given, settings)
    eng = engine or load(model)
    extra = {}
    if adapter is not None or bank is not None or steer is not None or controllers:
        from studio.steer import steering

        extra = steering(eng, adapter=adapter, bank=bank, steer=steer, controllers=controllers or ())
    return eng.stream(prompt, as_constraint(constraints), Settings(**settings), mode, **extra)


def generate(prompt: str, constraints=None, *, model: str | None = None, mode: str = "continue",
             engine: Engine | None = None, **settings) -> Result:
    return stream(prompt, constraints, model=model, mode=mode, engine=engine, **settings).run()


def candidates(prompt: str, constraints=None, *, n: int = 10, words: bool = True,
               model: str | None = None, mode: str = "continue",
               engine: Engine | None = None) -> list[Candidate]:
    """The ``n`` most probable next words (or tokens) that obey the constraints."""
    eng = engine or load(model)
    return next_candidates(eng, prompt, as_constraint(constraints), n=n, words=words, mode=mode)


def check(text: str, constraints) -> list[Violation]:
    """Every violation of the constraints in ``text`` (independent of the decoder)."""
    c = as_constraint(constraints)
    return [] if c is None else c.check(text)


def score(text: str, constraints=None, *, model: str | None = None, prompt: str = "",
          engine: Engine | None = None, window: int = 1024) -> Score:
    """Per-token perplexity; with constraints, renormalised over the allowed tokens."""
    eng = engine or load(model)
    return score_text(eng, text, as_constraint(constraints), prompt=prompt, window=window)


def logits_processor(constraints, tokenizer, **kw):
    """Our constraints as a transformers LogitsProcessor for ``model.generate``."""
    from studio.bridges.hf import ConstraintLogitsProcessor

    return ConstraintLogitsProcessor(as_constraint(constraints), tokenizer, **kw)
