"""The headless Python API: the same request path the CLI and the studio use.

    from studio import generate, stream, variants, candidates, check, score
    r = generate("The old house on the hill", "lipogram:e", max_new_tokens=80, seed=1)
    for piece in stream("Once", "lipogram:e"): print(piece, end="")
    for r in variants("The sea was", "syllables:1", k=3, seed=1): print(r.text)

``constraints`` is a spec string, a list of specs (joined with &), a Constraint, or None.
``model`` is None for the embedded default, a local path, or a Hugging Face id.

Poems: ``generate("autumn rain", form="haiku")``; ``form=`` takes what the ``form:`` spec
takes (``"couplet-iambic;end=.?!"``) and ``given=[...]`` lines already written, which count
against the form (``text`` holds only the new lines).  ``generate(p, "form:haiku")`` works
too; either way the poem starts on its own line and the token budget fits the form.

Every call builds a ``studio.request.Request`` and runs ``prepare``; ``run(request)`` takes
one directly.
"""

from __future__ import annotations

import threading

from constraints.base import Violation

from studio.next_words import Candidate, next_candidates
from studio.decode.engine import Engine
from studio.decode.generation import Generation, Result
from studio.request import Request, Steering, as_constraint, prepare
from studio.scoring import Score, score_text

_engines: dict[int, Engine] = {}
_lock = threading.Lock()


def load(model: str | None = None, device: str | None = "auto", dtype=None,
         allow_local: bool = True) -> Engine:
    """The engine for ``model``: the model is loaded once per process (models.loading), and
    one engine (its vocabulary index, its scheduler) is kept per loaded model."""
    from models.loading import load_model

    lm = load_model(model, device=device, dtype=dtype, allow_local=allow_local)
    with _lock:
        eng = _engines.get(id(lm))
        if eng is None or eng.lm is not lm:
            eng = _engines[id(lm)] = Engine(lm)
        return eng


def request(prompt: str, constraints=None, *, mode: str = "continue", form=None, given=None,
            adapter=None, bank=None, steer=None, expert=None, discriminator=None, controllers=None,
            variants: int = 1, search: int | None = None, plan_ends: bool = True, particles: bool = True,
            particle_weight: str = "likelihood", model: str | None = None, **settings) -> Request:
    """The Request these keyword arguments describe (``settings``: Settings fields)."""
    steering = Steering(adapter=adapter, bank=bank, steer=steer, expert=expert, discriminator=discriminator,
                        controllers=list(controllers or ()))
    return Request(prompt=prompt, constraints=constraints, form=form, given=given, mode=mode,
                   settings=settings, steering=None if steering.is_off() else steering,
                   variants=variants, search=search, plan_ends=plan_ends, particles=particles,
                   particle_weight=particle_weight, model=model)


def stream(prompt: str, constraints=None, *, model: str | None = None, engine: Engine | None = None,
           **kw) -> Generation:
    """A Generation: iterate it for text pieces as they are decoded; ``.result`` after;
    ``.cancel()`` from another thread stops it before its next step.  ``adapter``,
    ``bank``, ``steer``, ``expert``, ``discriminator`` and ``controllers`` steer it softly
    (studio/steer.py); the other keywords are the request's and the settings'."""
    req = request(prompt, constraints, model=model, **kw)
    eng = engine or load(model)
    return prepare(req, eng).stream(eng)


def generate(prompt: str, constraints=None, *, model: str | None = None, engine: Engine | None = None,
             **kw) -> Result:
    req = request(prompt, constraints, model=model, **kw)
    eng = engine or load(model)
    return prepare(req, eng).generate(eng)


def variants(prompt: str, constraints=None, *, k: int = 3, model: str | None = None,
             engine: Engine | None = None, **kw) -> list[Result]:
    """``k`` continuations decoded side by side in one batch (seeds ``seed``, ``seed+1``...)."""
    req = request(prompt, constraints, model=model, variants=k, **kw)
    eng = engine or load(model)
    return prepare(req, eng).variants(eng)


def run(req: Request, engine: Engine | None = None) -> list[Result]:
    """Run a Request: its ``variants`` results (one unless it asks for more)."""
    eng = engine or load(req.model)
    prepared = prepare(req, eng)
    if req.variants == 1:
        return [prepared.generate(eng)]
    return prepared.variants(eng)


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
