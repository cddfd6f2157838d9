"""What the studio does, without gradio: engines, settings, generation, next words, the live
check.  Shared by the page's callbacks and the scripting endpoints, and testable alone.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from constraints import limits
from constraints.base import Constraint, ImpossibleConstraint, SpecError, Violation
from constraints.forms import check_form
from constraints.limits import TEXT_CHARS

from studio.next_words import next_candidates
from studio.ui.drafts import DraftError, DraftStore
from studio.decode.engine import Engine, PromptError
from studio.decode.generation import Generation
from studio.decode.settings import (DEFAULT_REPETITION_PENALTY, DEFAULT_TEMPERATURE, DEFAULT_TOP_K,
                             DEFAULT_TOP_P, Settings)

from studio.ui import rules, values
from studio.ui.config import UiConfig
from studio.ui.engines import EngineShelf
from studio.ui.session import Running
from studio.ui.pacing import Pacer
from studio.ui.shares import GENERATION, NEXT_WORDS, Share, Shares
from studio.request import Prepared, Request, prepare, token_budget

if TYPE_CHECKING:
    from studio.ui.steering import SteeringIn

log = logging.getLogger("perec.studio")

MAX_VARIANTS = 4  # continuations side by side in the studio
MAX_SEARCH = 8  # candidate lines per line the settings panel offers
MAX_CANDIDATES = 50  # next words in one list (each is a branch of the word search)
MAX_MESSAGE = 300  # characters of a message shown to the writer
# How long a check waits for one of the limits.CHECKS_AT_ONCE slots before it is refused:
# long enough to ride out a burst of keystrokes, short enough that a flood gets an answer.
CHECK_WAIT_S = 5.0


class UserError(ValueError):
    """Something the writer can fix; shown in the page as is."""


def readable(e: BaseException) -> str:
    """A message for the page: the error's own words for expected problems, never a trace."""
    from models.loading import ModelLoadError

    expected = (UserError, rules.RuleError, SpecError, ImpossibleConstraint, PromptError,
                ModelLoadError, DraftError, ValueError)
    if isinstance(e, expected):
        msg = one_line(str(e)) or type(e).__name__
        return msg[0].upper() + msg[1:]
    log.exception("unexpected error in the studio", exc_info=e)
    return f"Something went wrong ({type(e).__name__}: {one_line(str(e))[:200]}). Your draft is unchanged."


def one_line(msg: str) -> str:
    """A message as the page shows it: one line, at most MAX_MESSAGE characters (a model's
    or a library's error may run over several lines)."""
    msg = " ".join(msg.split())
    return msg if len(msg) <= MAX_MESSAGE else msg[: MAX_MESSAGE - 1] + "…"


@dataclass
class SettingsIn:
    """The settings panel, as the page sends it."""

    model: str = ""
    mode: str = "continue"
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P
    repetition_penalty: float = DEFAULT_REPETITION_PENALTY
    max_new_tokens: int = 60
    seed: float | int | None = None  # blank or negative: a new random seed each time
    search: int | float = 0  # lines tried per line; 0: automatic (studio.request.DEFAULT_POEM_SEARCH)

    def search_value(self) -> int | None:
        n = values.whole("search", self.search or 0)
        if n < 0 or n > MAX_SEARCH:
            raise UserError(f"search width must be 0 (automatic) to {MAX_SEARCH} (got {n})")
        return n or None

    def seed_value(self) -> int | None:
        return values.seed(self.seed)

    def to_dict(self) -> dict:
        """The draft's record of its settings (Settings fields, and the search width).  A value
        that cannot be read is left out: it is refused when used, and must never stop the
        text being saved."""
        out = {}
        for name in ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens", "seed", "search"):
            value = getattr(self, name)
            try:
                out[name] = values.RECORD_TYPES[name](name, 0 if name == "search" and not value else value)
            except ValueError:
                pass
        return out


class Studio:
    """The shared part of the app: config, engines (one per model), drafts, running
    generations.  Per-writer state lives in ``Session``.

    Engines: the default one, kept for good, and the models Settings → Model loads
    (``models``: on a Space only those its allow-list offers, at most MODELS_KEPT loaded,
    least recently used unloaded first, never one in use).  Decoding: each session runs
    one generation at a time (``shares``), so no client holds every row of the batch."""

    def __init__(self, config: UiConfig, engine: Engine | None = None, store: DraftStore | None = None,
                 adapter_root: str | Path | None = None):
        self.config = config
        self.default_engine = engine
        self.adapter_root = adapter_root  # where the Steering tab lists and trains adapters (None: default)
        self.store = store or DraftStore(config.data_dir() / "drafts.sqlite3", space=config.space)
        self.running = Running()
        self.checks = CheckSlots(limits.CHECKS_AT_ONCE.value(config.space))
        self.shares = Shares(space=config.space)
        self.pacer = Pacer(space=config.space)  # each session's page events, paced (studio/ui/pacing.py)
        self.models = EngineShelf(config.allowed_models, config.allow_local_models, config.space)
        # How ``stream`` runs a generation ``start`` prepared: (through the scheduler?, rows).
        # Weak: a generation prepared and never streamed leaves nothing behind.
        self._plans: "weakref.WeakKeyDictionary[object, tuple[bool, int]]" = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------- engines and settings

    def engine(self, model: str | None = "") -> Engine:
        """The engine for ``model`` (blank: the default), loaded if need be."""
        with self._engine(model) as eng:
            return eng

    @contextmanager
    def _engine(self, model: str | None) -> Iterator[Engine]:
        """The engine for ``model``, held for the block: another model's load never
        unloads it meanwhile."""
        from models.loading import ModelLoadError, is_embedded

        import studio

        name = (model or "").strip()
        if is_embedded(name) or (self.default_engine is not None and name == self.default_engine.name):
            if self.default_engine is None:
                # studio.load loads a model once per process (models.loading holds its lock).
                self.default_engine = studio.load(None)
            yield self.default_engine
            return
        try:
            eng = self.models.acquire(name)
        except ModelLoadError as e:  # not offered here, not found, not a causal LM
            raise UserError(f"Could not load the model: {e}") from None
        try:
            yield eng
        finally:
            self.models.release(eng)

    def check_size(self, text: str, what: str = "draft") -> None:
        """Refuse a text over this server's cap (limits.TEXT_CHARS), before any work on it."""
        cap, n = self.config.max_chars, len(text or "")
        if n > cap:
            where = (" Keep the part you are working on here, or run Perec on your own machine for long texts."
                     if self.config.space else "")
            raise UserError(f"The {what} is too long: {n:,} characters (the cap is {cap:,}; setting "
                            f"{TEXT_CHARS.setting}).{where}")

    def engine_ready(self, model: str | None = "") -> bool:
        """Whether Generate can start at once (the default model is loaded)."""
        from models.loading import is_embedded

        return not is_embedded((model or "").strip()) or self.default_engine is not None

    def engine_note(self) -> str:
        """The default engine's line when it is not the fast one (llama.cpp could not be
        used here), else ''."""
        eng = self.default_engine
        return eng.note if eng is not None else ""

    def warm_up(self) -> threading.Thread:
        """Load (or, on the first start, convert) the default model in the background, so
        the page is usable meanwhile; models.loading.PROGRESS says how far it is."""
        def load():
            try:
                self.engine("")
            except Exception as e:  # noqa: BLE001  (PROGRESS holds the reason; Generate shows it)
                log.warning("warming up the model failed: %s", e)

        t = threading.Thread(target=load, name="perec-warm-up", daemon=True)
        t.start()
        return t

    def settings(self, s: SettingsIn) -> Settings:
        cap = self.config.max_tokens_cap
        try:
            n = values.whole("max_new_tokens", s.max_new_tokens)
            if n > cap:
                raise UserError(f"max tokens is capped at {cap} here (asked for {n})")
            return Settings(max_new_tokens=n, temperature=values.number("temperature", s.temperature),
                            top_k=values.whole("top_k", s.top_k), top_p=values.number("top_p", s.top_p),
                            repetition_penalty=values.number("repetition_penalty", s.repetition_penalty),
                            seed=s.seed_value())
        except UserError:
            raise
        except ValueError as e:
            raise UserError(f"Bad setting: {e}") from None

    # ------------------------------------------------------------- generation

    def request(self, draft: str, active: list[str], form: str, s: SettingsIn, instruction: str = "",
                steering: "SteeringIn | None" = None, variants: int = 1) -> tuple[Request, str]:
        """The Request for Generate / Variants, and the text the generated text follows in
        the draft (the draft, plus a line break for a poem or a reply).  With a form, the
        draft's lines are the poem so far and the model writes the lines it lacks."""
        if s.mode not in ("continue", "instruct"):
            raise UserError(f"unknown mode {values.got(s.mode)} (continue or instruct)")
        self.check_size(draft, "draft")
        self.check_size(instruction, "instruction")
        settings = self.settings(s).to_dict()
        c = rules.combined(active)
        if form:
            if not draft.strip() and s.mode == "continue" and not instruction.strip():
                raise UserError("The draft is empty: write the poem's first words, or switch to "
                                "instruct mode and give an instruction.")
            # The draft as one string: a last line without its break is continued.
            req = Request(prompt=instruction if s.mode == "instruct" else "", constraints=c, form=form,
                          given=draft if draft.strip() else None, mode=s.mode, settings=settings,
                          variants=variants, search=None if variants > 1 else s.search_value())
            try:
                fc = prepare(req).form
            except ValueError as e:  # FormError: too many lines already, lines that cannot rhyme
                raise UserError(str(e)) from None
            # The budget fits the lines still to write, within the cap.
            req.settings["max_new_tokens"] = min(self.config.max_tokens_cap,
                                                 max(settings["max_new_tokens"], token_budget(fc)))
            base = draft if not draft or draft.endswith("\n") else draft + "\n"
            if fc.partial:  # the poem goes on from the draft's unfinished line
                base = draft.rstrip()
            return req, base
        prompt = draft if s.mode == "continue" else instruction
        if s.mode == "continue" and not prompt.strip():
            raise UserError("The draft is empty: write a few words for the model to continue "
                            "(or switch to instruct mode and give an instruction).")
        base = draft
        if s.mode == "instruct" and draft.strip() and not draft.endswith("\n"):
            base = draft + "\n\n"  # a reply starts its own paragraph
        return Request(prompt=prompt, constraints=c, mode=s.mode, settings=settings, variants=variants,
                       search=None if variants > 1 else s.search_value()), base

    def _prepared(self, req: Request, eng: Engine, steering: "SteeringIn | None") -> tuple[Prepared, str]:
        prepared = prepare(req, eng)
        note = ""
        if steering is not None and not steering.is_off():
            steer = steering.kwargs(eng, root=self.adapter_root, space=self.config.space)
            if steer:
                prepared.steer = steer
                note = steering.describe()
        return prepared, note

    def start(self, draft: str, active: list[str], form: str, s: SettingsIn,
              instruction: str = "", steering: "SteeringIn | None" = None) -> tuple[Generation, str, str]:
        """A generation ready to iterate, the note to show, and the text the generated
        text follows in the draft.  ``steering``: the Steering tab's adapters and
        controllers (None: unsteered).  Bad input is refused here, before any decoding.
        Nothing decodes until ``stream`` runs it: with batching on, the row then joins the
        engine's shared batch (continuous batching)."""
        req, base = self.request(draft, active, form, s, instruction)
        with self._engine(s.model) as eng:
            prepared, note = self._prepared(req, eng, steering)
            gen = prepared.stream(eng)
        # A search drives its own batch of ``search`` rows, in the reader's thread.
        self._plans[gen] = (self.config.batching and prepared.search == 1, prepared.search)
        return gen, note, base

    def variants(self, draft: str, active: list[str], form: str, s: SettingsIn, k: int = 3,
                 instruction: str = "", steering: "SteeringIn | None" = None,
                 session: str | None = None) -> tuple[list[str], str, str]:
        """``k`` continuations decoded side by side (one batch): their texts, a note, and
        the text they follow in the draft.  ``session``: whose share of the decoder they
        use (None: unshared, for scripts of the Python API)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= MAX_VARIANTS:
            raise UserError(f"variants: choose 2 to {MAX_VARIANTS} (asked for {values.got(k)})")
        req, base = self.request(draft, active, form, s, instruction, variants=k)
        with self.shares.hold(session, rows=k), self._engine(s.model) as eng:
            prepared, note = self._prepared(req, eng, steering)
            results = prepared.variants(eng)
        return [r.text for r in results], note, base

    def reserve(self, gen: Generation, session: str | None) -> "Share":
        """The session's one running generation, taken for ``gen`` now: a second one while
        it runs is refused in one line (LimitError) before anything is saved or decoded.
        Pass it to ``stream``, which gives it back however the stream ends."""
        _batched, rows = self._plan(gen)
        return self.shares.take(session or "", rows, GENERATION)

    def _plan(self, gen: Generation) -> tuple[bool, int]:
        """How ``start`` planned ``gen`` to run: (through the scheduler?, rows)."""
        return self._plans.get(gen, (False, getattr(gen, "width", 1)))

    def stream(self, gen: Generation, session: str | None, share: "Share | None" = None) -> Iterator[str]:
        """The generated text so far, after each piece; registered so Stop can cancel it.
        The session's one running generation (``share`` from ``reserve``, else taken at the
        first piece): a second one while it runs is refused in one line (LimitError),
        before it decodes anything."""
        batched, rows = self._plan(gen)
        self._plans.pop(gen, None)
        share = share or self.shares.take(session or "", rows, GENERATION)
        try:
            with self.models.lease(gen.engine):
                if batched:
                    # The row's end gives the share back even if nobody reads it any more.
                    gen.engine.scheduler().submit(gen, on_end=share.release)
                self.running.add(session, gen)
                text = ""
                try:
                    for piece in gen:
                        text += piece
                        yield text
                finally:
                    gen.cancel()  # the page went away mid-stream: nothing should keep decoding
                    self.running.discard(session, gen)
        finally:
            share.release()

    # ------------------------------------------------------------- next words

    def candidates(self, draft: str, active: list[str], form: str, s: SettingsIn,
                   n: int = 10, instruction: str = "", session: str | None = None) -> list[dict]:
        """The next words that obey the rules, most probable first, as dicts
        (text: exactly what to append; display; prob).  ``session``: whose share of the
        decoder the search uses (None: unshared)."""
        with self.shares.hold(session, kind=NEXT_WORDS):
            return self._candidates(draft, active, form, s, n, instruction)

    def _candidates(self, draft: str, active: list[str], form: str, s: SettingsIn,
                    n: int, instruction: str) -> list[dict]:
        self.check_size(draft, "draft")
        n = values.bounded("n", n, 1, MAX_CANDIDATES)
        prompt, mode = draft, "continue"
        if not draft.strip():
            if s.mode == "instruct" and instruction.strip():
                prompt, mode = instruction, "instruct"
            else:
                return []
        c = rules.combined(active)
        # A form shapes whole lines; mid-line, its decoder goes on from the unfinished line.
        if form and draft.strip():
            try:
                p = prepare(Request(constraints=c, form=form, given=draft))
            except ValueError as e:
                raise UserError(str(e)) from None
            c, prompt = p.constraint, p.prompt
        with self._engine(s.model) as eng:
            return [x.to_dict() for x in next_candidates(eng, prompt, c, n=n, words=True, mode=mode)]

    def one_word(self, draft: str, active: list[str], form: str, s: SettingsIn,
                 instruction: str = "", cands: list[dict] | None = None, session: str | None = None) -> str:
        """One next word, sampled by probability from the allowed candidates (``cands``:
        the list already on screen for this draft, which saves a model pass)."""
        seed = s.seed_value()
        t = values.number("temperature", s.temperature)
        if t <= 0:
            raise UserError(f"temperature must be > 0 (got {values.got(s.temperature)})")
        if not cands:
            cands = self.candidates(draft, active, form, s, n=12, instruction=instruction, session=session)
        if not cands:
            if not draft.strip():
                raise UserError("The draft is empty: write a few words first.")
            raise UserError("No word can follow here under the active rules.")
        rng = random.Random(seed if seed is not None else None)
        # p ** (1/t), scaled by the top one in log space: a low temperature picks the most
        # probable word instead of underflowing every weight to zero.
        logs = [math.log(max(c["prob"], 1e-12)) / t for c in cands]
        top = max(logs)
        weights = [math.exp(x - top) for x in logs]
        return rng.choices(cands, weights=weights, k=1)[0]["text"]

    # ------------------------------------------------------------- live check

    def check(self, text: str, active: list[str], form: str) -> "CheckView":
        """The live check and the public ``/check``: bounded in text length, in violations
        returned and in how many run at once (the one path both take)."""
        limits.TEXT_CHARS.check(len(text or ""), self.config.space)
        self.check_size(text, "draft")  # UiConfig.max_chars, where a config sets it apart
        with self.checks.slot():
            return check_view(text, active, form)


class CheckSlots:
    """At most ``n`` checks at once: a check waits up to ``wait_s`` for a slot, then is
    refused in one line.  A check is pure CPU; without this, a flood of them at the text
    cap would take every core (and the memory of each) from the writers who generate."""

    def __init__(self, n: int, wait_s: float = CHECK_WAIT_S):
        self.n, self.wait_s = n, wait_s
        self._free = threading.BoundedSemaphore(n)

    @contextmanager
    def slot(self):
        if not self._free.acquire(timeout=self.wait_s):
            raise UserError(f"The server is busy: {self.n} checks are running (the cap on "
                            f"{limits.CHECKS_AT_ONCE.what}; setting {limits.CHECKS_AT_ONCE.setting}). "
                            "Try again in a moment.")
        try:
            yield
        finally:
            self._free.release()


# ----------------------------------------------------------------- the live check


@dataclass
class CheckView:
    ok: bool
    violations: list[Violation]
    highlight: dict  # gr.HighlightedText value
    summary: str  # markdown
    scansion: list[list] | None  # per-line rows for a form, None without one
    form_report: dict | None = None
    total: int | None = None  # violations found in all (``violations`` holds the first, capped)

    def __post_init__(self):
        if self.total is None:
            self.total = len(self.violations)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "violations": [v.to_dict() for v in self.violations],
                "total": self.total, "summary": self.summary, "form": self.form_report}


SCANSION_HEADERS = ["#", "syllables", "rhyme", "sound", "stress", "ok", "line"]
MAX_LISTED = 12


def check_view(text: str, active: list[str], form: str, limit: int | None = None) -> CheckView:
    """Check ``text`` against the set and the form with the independent verifiers.  The
    first ``limit`` violations by position are returned (default: ``limits.VIOLATIONS``),
    with the count of all of them."""
    limit = limits.VIOLATIONS.value() if limit is None else limit
    c = rules.combined(active)
    vs, total = c.check_first(text, limit) if c is not None else ([], 0)
    rows, report = None, None
    if form:
        try:
            rep = check_form(form, text)
        except ValueError as e:
            raise UserError(str(e)) from None
        vs += rep.violations
        total += len(rep.violations)
        report = rep.to_dict()
        rows = [[ln.number, f"{ln.syllables}/{'?' if ln.target is None else ln.target}", ln.rhyme or "–",
                 ln.rhyme_key or "", ln.stress or "", "✓" if ln.ok else "✗", ln.text] for ln in rep.lines]
    vs.sort(key=lambda v: (v.start, v.end))
    vs = vs[:limit]
    return CheckView(total == 0, vs, _highlight(text, vs), _summary(text, vs, c, form, total), rows, report,
                     total)


def _highlight(text: str, vs: list[Violation]) -> dict:
    """Marked spans for HighlightedText, which cannot draw overlaps: each character shows
    the narrowest violation over it (a banned letter inside a banned word shows as the
    letter); every violation is still listed in the summary."""
    label: list[str | None] = [None] * len(text)
    names: dict[str, str] = {}  # rule -> its label, made once per rule (the page sends each span's)
    for v in sorted(vs, key=lambda v: v.end - v.start, reverse=True):  # narrow ones last, on top
        name = names.get(v.rule)
        if name is None:
            name = names[v.rule] = _label(v.rule)
        for i in range(max(0, v.start), min(v.end, len(text))):
            label[i] = name
    ents, i = [], 0
    while i < len(text):
        if label[i] is None:
            i += 1
            continue
        j = i
        while j < len(text) and label[j] == label[i]:
            j += 1
        ents.append({"entity": label[i], "start": i, "end": j})
        i = j
    return {"text": text, "entities": ents}


MAX_LABEL = 80  # characters of a rule shown as a highlight's label or in the summary


def _label(rule: str) -> str:
    """A rule as the page names it: whole unless it is long (a ban: list of thousands of
    words would otherwise be sent again for every marked span and listed line)."""
    return rule if len(rule) <= MAX_LABEL else rule[: MAX_LABEL - 1] + "…"


def _summary(text: str, vs: list[Violation], c: Constraint | None, form: str, total: int | None = None) -> str:
    if c is None and not form:
        return "No rules are active: add one from the constraints panel."
    if not text.strip():
        return "Nothing written yet."
    total = len(vs) if total is None else total
    if not total:
        return "✓ The draft keeps every rule."
    lines = [f"**{total:,} place{'s' if total != 1 else ''} break{'s' if total == 1 else ''} a rule:**"]
    for v in vs[:MAX_LISTED]:
        lines.append(f"- {v.where(text)}: {v.message} (`{_label(v.rule)}`)")
    if total > MAX_LISTED:
        lines.append(f"- … and {total - min(len(vs), MAX_LISTED):,} more")
    if total > len(vs):
        lines.append(f"\n{len(vs):,} shown of {total:,} (the cap on {limits.VIOLATIONS.what}; "
                     f"setting {limits.VIOLATIONS.setting}).")
    return "\n".join(lines)
