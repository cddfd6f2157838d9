"""The page's events.  Each handler turns the page's values into calls on ``Studio`` and the
results back into component updates.  Bad input never raises out of a handler: it becomes a
readable message in the status line and a toast (gr.Warning), and the draft is left as is.

Every event has an ``api_name`` (``studio_*``), so the page itself can be scripted too.
"""

from __future__ import annotations

import html
import inspect
import logging

import gradio as gr

from studio.ui.drafts import Draft, DraftConflict

from studio.ui import persistence as store
from studio.ui import rules, steering
from studio.ui.session import Session
from studio.ui.shares import session_key
from studio.ui.work import SettingsIn, Studio, UserError, readable

HIDDEN = "hidden"
log = logging.getLogger("perec.studio")


def _warn(e: BaseException) -> str:
    msg = readable(e)
    gr.Warning(msg)
    return f"⚠ {msg}"


def _join(draft: str, addition: str) -> str:
    """``addition`` as it should follow ``draft`` (no doubled space)."""
    if draft[-1:].isspace() and addition[:1] == " ":
        return addition[1:]
    return addition


def _status_for(r, note: str = "") -> str:
    tps = f"{r.tokens_per_second:.1f} tokens/s"
    msg = {
        "cancelled": f"Stopped by the writer after {r.tokens} tokens.",
        "eos": f"The model ended the text after {r.tokens} tokens ({tps}).",
        "stop_string": f"Stopped at a stop string after {r.tokens} tokens.",
        "dead_end": f"Stopped early after {r.tokens} tokens: {r.message}.",
    }.get(r.stop_reason, f"Wrote {r.tokens} tokens in {r.seconds:.1f} s ({tps}).")
    return msg + (f"  \n{note}" if note else "")


def _header(session: Session) -> str:
    """The line above the editor: the open draft's title, then its rules as chips."""
    title = f'<span class="draft-title">{html.escape(session.title)}</span>' if session.title else ""
    return title + rules.chips_html(session.active, session.form)


def _bars(cands: list[dict]) -> list[list[str]]:
    top = max((c["prob"] for c in cands), default=1.0) or 1.0
    return [[c["display"], f'<div class="cand-bar"><div class="bar" style="width:{max(2, round(150 * c["prob"] / top))}px">'
             f'</div><span class="pct">{c["prob"]:.1%}</span></div>'] for c in cands]


class Handlers:
    def __init__(self, studio: Studio):
        self.studio = studio

    # ------------------------------------------------------------- views

    def view(self, session: Session, d: Draft, status: str = "") -> list:
        """Values for VIEW: everything that shows the open draft and its rules."""
        s = d.settings or {}
        seed = s.get("seed")
        cap = self.studio.config.max_tokens_cap
        return [
            session, d.text, d.title, gr.Radio(choices=rules.chips(session.active), value=None),
            rules.spec_string(session.active), _header(session), session.form,
            d.model, d.mode, s.get("temperature", gr.skip()), s.get("top_k", gr.skip()),
            s.get("top_p", gr.skip()), s.get("repetition_penalty", gr.skip()),
            min(s.get("max_new_tokens", self.studio.config.default_max_tokens), cap),
            -1 if seed is None else seed, s.get("search", 0),
            gr.Dropdown(choices=store.choices(self.studio, session), value=d.id), status,
        ]

    def rules_view(self, session: Session, status: str = "") -> list:
        session.candidates_for = None  # the list on screen was for the old rules
        return [session, gr.Radio(choices=rules.chips(session.active), value=None),
                rules.spec_string(session.active), _header(session),
                session.form, status]

    # ------------------------------------------------------------- writing

    def generate(self, request: gr.Request, draft, instruction, session: Session, *vals, revision=""):
        # (request first: gradio passes gr.Request by position, which *vals would swallow)
        s = SettingsIn(*vals)
        draft = draft or ""
        if not self.studio.engine_ready(s.model):
            yield gr.skip(), "Waiting for the model to load (see the line above)…", session, gr.skip()
        try:
            if session.steering_error:
                raise UserError(session.steering_error)
            gen, note, base = self.studio.start(draft, session.active, session.form, s, instruction or "",
                                                steering=session.steering)
            # The session's one generation first: a second Generate is refused before it
            # saves anything (its save would race the running one's pieces).
            share = self.studio.reserve(gen, request.session_hash)
        except Exception as e:
            yield gr.skip(), _warn(e), session, gr.skip()
            return
        try:
            yield from self._write(request, session, gen, note, base, draft, revision, share)
        finally:
            share.release()  # however it ends, the page closing before the stream starts too

    def _write(self, request: gr.Request, session: Session, gen, note: str, base: str, draft: str,
               revision, share):
        """Generate's stream: the page's text saved, then each piece saved and shown."""
        try:
            # The draft Generate goes on from, as the writer sees it, is the row's first: each
            # piece is then saved on top of the revision the previous one was saved at.
            saved = self._keep(session, draft, store.based_on(session, revision))
        except Exception as e:
            yield gr.skip(), _warn(e), session, gr.skip()
            return
        yield gr.skip(), "Writing…" + (f"  \n{note}" if note else ""), session, gr.skip()
        text = ""
        try:
            for text in self.studio.stream(gen, request.session_hash, share):
                # The server's copy first: text the page shows is already saved, so a crash
                # of the server loses none of it (the page's own save comes later, by the
                # editor's change event, and would lag behind a kill -9).  The revision goes
                # with the piece, so that late echo is known for what it is and dropped.
                saved = self._keep(session, base + text, saved.revision if saved else None) or saved
                yield base + text, gr.skip(), session, store.token(saved) if saved else gr.skip()
        except DraftConflict as e:
            # The writer changed the draft under the stream (typed into it): their text is
            # the row's, so the generation stops rather than write over it.
            gen.cancel()
            yield e.current.text, _warn(ValueError(STALE_STREAM)), session, store.token(e.current)
            return
        except Exception as e:
            yield base + text, _warn(e), session, gr.skip()
            return
        added = base[len(draft):] + text
        session.inserted(len(draft), added)
        session.last_stop = gen.result.stop_reason
        yield base + text, _status_for(gen.result, note), session, store.token(saved) if saved else gr.skip()

    def variants(self, request: gr.Request, draft, instruction, session: Session, *vals):
        """Decode the variants side by side and show them; nothing enters the draft yet."""
        draft = draft or ""
        k = len(self.variant_slots)
        try:
            if session.steering_error:
                raise UserError(session.steering_error)
            texts, note, base = self.studio.variants(draft, session.active, session.form, SettingsIn(*vals),
                                                     k=k, instruction=instruction or "",
                                                     steering=session.steering, session=session_key(request))
        except Exception as e:
            return [gr.skip()] * (k + 1) + [session, _warn(e)]
        session.variants, session.variants_for, session.variants_base = texts, draft, base
        status = f"{k} variants: keep one with its button." + (f"  \n{note}" if note else "")
        return [gr.Group(visible=True)] + texts + [session, status]

    def use_variant(self, index: int, draft, session: Session, revision=""):
        """Put variant ``index`` into the draft, as one insertion Undo can take back."""
        draft = draft or ""
        if not (0 <= index < len(session.variants)) or session.variants_for != draft:
            return gr.skip(), gr.Group(visible=False), session, "The draft changed since: make new variants."
        added = session.variants_base[len(draft):] + session.variants[index]
        refused = self._keep_insertion(session, draft + added, revision)
        if refused:
            return gr.skip(), gr.skip(), session, refused
        session.inserted(len(draft), added)
        session.variants, session.variants_for = [], None
        return draft + added, gr.Group(visible=False), session, f"Kept variant {index + 1}."

    def model_status(self):
        """The loading banner: progress while the default model loads, hidden after."""
        from models.loading import PROGRESS

        if self.studio.engine_ready(""):
            # One line when the fast engine could not run here (llama.cpp not built).
            note = self.studio.engine_note()
            return gr.Markdown("⚠ " + note if note else "", visible=bool(note)), gr.Timer(active=False)
        if PROGRESS.phase in ("idle", "ready"):
            return gr.skip(), gr.skip()
        text = PROGRESS.describe()
        frac = PROGRESS.fraction()
        if frac is not None:
            filled = int(frac * 20)
            text += f"  `{'█' * filled}{'░' * (20 - filled)}` {frac:.0%}"
        if PROGRESS.phase != "failed":
            text += "  \nYou can write, set rules and check meanwhile; Generate waits for the model."
        return gr.Markdown("⏳ " + text if PROGRESS.phase != "failed" else "⚠ " + text, visible=True), gr.skip()

    def stop(self, request: gr.Request):
        # When something stops, its own event writes the last word ("Stopped by the writer
        # after N tokens"); a "Stopping…" here could arrive after it and hide it.
        n = self.studio.running.stop(request.session_hash)
        return gr.skip() if n else "Nothing is being generated."

    def one_word(self, request: gr.Request, draft, instruction, session: Session, *vals, revision=""):
        draft = draft or ""
        try:
            shown = session.candidates if session.candidates_for == draft else None
            w = self.studio.one_word(draft, session.active, session.form, SettingsIn(*vals),
                                     instruction or "", cands=shown, session=session_key(request))
        except Exception as e:
            return gr.skip(), session, _warn(e)
        w = _join(draft, w)
        refused = self._keep_insertion(session, draft + w, revision)
        if refused:
            return gr.skip(), session, refused
        session.inserted(len(draft), w)
        return draft + w, session, f"Added “{w.strip()}”."

    def pick(self, index, draft, session: Session, revision=""):
        draft = draft or ""
        if isinstance(index, bool) or not isinstance(index, int) or not (0 <= index < len(session.candidates)):
            return gr.skip(), session, "That suggestion is gone; here are fresh ones."
        w = _join(draft, session.candidates[index]["text"])
        refused = self._keep_insertion(session, draft + w, revision)
        if refused:
            return gr.skip(), session, refused
        session.inserted(len(draft), w)
        return draft + w, session, f"Added “{w.strip()}”."

    def undo(self, draft, session: Session, revision=""):
        return self._undo_redo(session, session.undo_last, draft, revision)

    def redo(self, draft, session: Session, revision=""):
        return self._undo_redo(session, session.redo_last, draft, revision)

    def _undo_redo(self, session: Session, step, draft, revision):
        # The step is tried on a copy of the history: a refused save leaves Undo as it was.
        undo, redo = list(session.undo), list(session.redo)
        text, msg = step(draft or "")
        if text != (draft or ""):
            refused = self._keep_insertion(session, text, revision)
            if refused:
                session.undo, session.redo = undo, redo
                return gr.skip(), session, refused
        return text, session, msg

    def candidates(self, request: gr.Request, draft, instruction, session: Session, *vals):
        if not self.studio.engine_ready(SettingsIn(*vals).model):
            return gr.skip(), "The next-word list appears once the model has loaded.", session
        try:
            cands = self.studio.candidates(draft or "", session.active, session.form, SettingsIn(*vals),
                                           instruction=instruction or "", session=session_key(request))
        except Exception as e:
            session.candidates, session.candidates_for = [], None
            return gr.Dataset(samples=[]), f"⚠ {html.escape(readable(e))}", session
        session.candidates, session.candidates_for = cands, draft or ""
        if not cands:
            note = ("Write a few words to see what may come next." if not (draft or "").strip()
                    else "No word can follow here under these rules.")
        else:
            note = f"{len(cands)} words that keep every rule."
        return gr.Dataset(samples=_bars(cands)), note, session

    # ------------------------------------------------------------- live check and saving

    def _keep(self, session: Session, text: str, base: int | None = None) -> Draft | None:
        """Save the text now, compare-and-set on ``base`` (rules with it, settings as they
        were), and return the row.  DraftConflict (the text changed under it) goes to the
        caller; any other failure is logged and left to the next save (None), never
        allowed to stop the text reaching the page."""
        try:
            return store.write(self.studio, session, text, base=base)
        except DraftConflict:
            raise
        except Exception as e:  # noqa: BLE001  (the page's own save warns the writer)
            log.warning("could not save the draft: %s", readable(e))
            return None

    def _keep_insertion(self, session: Session, text: str, revision) -> str:
        """Save a model-written insertion (or an undo / redo) on top of the page's text:
        "" when it may go to the page, else the one line that says why not (nothing
        written, the page left as it is)."""
        try:
            self._keep(session, text, store.based_on(session, revision))
        except Exception as e:  # DraftConflict, a token that is not the page's
            return _warn(e)
        return ""

    def edited(self, draft, session: Session, *vals, revision=""):
        """After any change to the text: check it, save it (server and browser).  The save
        is compare-and-set on ``revision`` (the page's token): a late echo of text the
        server has already moved past is dropped, settings saved after the token stand,
        and the page's token moves only when the row holds exactly the page's text."""
        draft = draft or ""
        out = self._check(draft, session)
        try:
            d = store.write(self.studio, session, draft, SettingsIn(*vals), base=store.based_on(session, revision))
        except Exception as e:
            gr.Warning(f"Could not save: {readable(e)}")
            return out + [gr.skip(), gr.skip()]
        return out + [store.token(d) if d.text == draft else gr.skip(), store.browser_copy(session, d)]

    def _check(self, draft: str, session: Session) -> list:
        try:
            v = self.studio.check(draft, session.active, session.form)
        except Exception as e:
            return [{"text": draft, "entities": []}, f"⚠ {html.escape(readable(e))}", gr.Dataframe(visible=False)]
        table = gr.Dataframe(value=v.scansion, visible=True) if v.scansion is not None else gr.Dataframe(visible=False)
        return [v.highlight, v.summary, table]

    def settings_changed(self, draft, session: Session, *vals):
        """A change in the settings panel: saved with the draft (the settings alone: the
        text this event carries may be older than the row's)."""
        s = SettingsIn(*vals)
        try:
            browser = store.browser_copy(session, store.write(self.studio, session, None, s))
        except Exception as e:
            gr.Warning(f"Could not save: {readable(e)}")
            browser = gr.skip()
        return browser, gr.Textbox(visible=s.mode == "instruct")

    def load_model(self, model):
        try:
            eng = self.studio.engine(model)
        except Exception as e:
            return _warn(e)
        return f"Model ready: {eng.name}."

    # ------------------------------------------------------------- rules

    def _rules(self, session: Session, change) -> list:
        try:
            session.active = change(list(session.active))
            return self.rules_view(session, "")
        except Exception as e:
            return [gr.skip()] * 5 + [_warn(e)]

    def rule_add(self, name, arg, session):
        return self._rules(session, lambda a: rules.add(a, rules.make_spec(name, arg)))

    def rule_update(self, selected, name, arg, session):
        return self._rules(session, lambda a: rules.replace(a, selected, rules.make_spec(name, arg)))

    def rule_remove(self, selected, session):
        return self._rules(session, lambda a: rules.remove(a, selected))

    def rule_clear(self, session: Session):
        session.form = ""
        return self._rules(session, lambda a: [])

    def spec_apply(self, text, session):
        return self._rules(session, lambda a: rules.from_spec_text(text))

    def chip_selected(self, selected):
        name, arg = rules.split_name_arg(selected)
        if name is None:
            return gr.skip(), gr.skip(), gr.skip()
        return name, arg, rules.entry_help(name)

    def rule_picked(self, name):
        return rules.entry_help(name), rules.example_arg(name) if name else ""

    def preset(self, label, letter, bank, arg, session: Session):
        try:
            spec, form = rules.preset(label, rules.preset_input(label, letter, bank, arg))
            if spec:
                # One rule per preset: choosing Tautogram again with a new letter replaces the
                # old one, and "N words per sentence" leaves "Every sentence starts with…" be.
                session.active = rules.add([a for a in session.active if not rules.from_preset(label, a)], spec)
            if form:
                session.form = rules.check_form_spec(form)
            return self.rules_view(session, "")
        except Exception as e:
            return [gr.skip()] * 5 + [_warn(e)]

    def form_changed(self, form, session: Session):
        try:
            session.form = rules.check_form_spec(form)
            return self.rules_view(session, "")
        except Exception as e:
            return [gr.skip()] * 5 + [_warn(e)]

    # ------------------------------------------------------------- drafts

    def restore(self, browser, session: Session):
        notes: list[str] = []
        try:
            d = store.restore(self.studio, session, browser, notes)
        except Exception as e:
            return [gr.skip()] * (self.view_len - 1) + [_warn(e)]
        return self.view(session, d, _warn(ValueError(notes[0])) if notes else "")

    def _open(self, session, action):
        try:
            d = action()
        except Exception as e:
            return [gr.skip()] * (self.view_len - 1) + [_warn(e)]
        return self.view(session, d, f"Opened “{d.title}”.")

    def open_draft(self, draft_id, session):
        return self._open(session, lambda: store.open_draft(self.studio, session, draft_id))

    def new_draft(self, session):
        return self._open(session, lambda: store.new_draft(self.studio, session))

    def delete_draft(self, session):
        return self._open(session, lambda: store.delete(self.studio, session))

    def import_draft(self, file, session):
        return self._open(session, lambda: store.import_file(self.studio, session, file))

    def draft_list(self, session: Session):
        """The drafts list, fresh (titles and first words change as the writer works)."""
        return gr.Dropdown(choices=store.choices(self.studio, session), value=session.draft_id or None)

    def rename(self, title, session: Session):
        try:
            d = store.rename(self.studio, session, title or "")
        except Exception as e:
            return session, gr.skip(), gr.skip(), _warn(e)
        return (session, gr.Dropdown(choices=store.choices(self.studio, session), value=d.id),
                _header(session), f"Renamed to “{d.title}”.")

    def export(self, fmt, draft, session: Session, *vals, revision=""):
        try:
            # The draft as shown, saved first (compare-and-set like every save), then written out.
            store.save(self.studio, session, draft or "", SettingsIn(*vals), store.based_on(session, revision))
            path = store.export(self.studio, session, fmt)
        except Exception as e:
            return gr.File(visible=False), _warn(e)
        return gr.File(value=str(path), visible=True), f"Exported “{path.name}”."


# Generate met a draft that changed under it: typed into, or written by another tab or an
# earlier Generate the page had not yet shown.  The row's text stands.
STALE_STREAM = "Generate stopped: the draft changed while it wrote (typed, or another tab); your text is kept"


def with_revision(fn):
    """``fn`` as an event whose last input is the page's revision token (``ui.revision``),
    passed on as ``revision=``: the handlers keep their own signatures, and a script that
    leaves the token out (it has a default) is taken as based on what is stored."""
    if inspect.isgeneratorfunction(fn):
        def streamed(request: gr.Request, *args):
            *rest, tok = args
            yield from fn(request, *rest, revision=tok)
        return streamed

    if next(iter(inspect.signature(fn).parameters), "") == "request":
        # gradio passes gr.Request only to a parameter annotated with it: keep one here too.
        def with_request(request: gr.Request, *args):
            *rest, tok = args
            return fn(request, *rest, revision=tok)
        return with_request

    def event(*args):
        *rest, tok = args
        return fn(*rest, revision=tok)
    return event


def wire(ui, studio: Studio, demo: gr.Blocks) -> None:
    """Connect the components of ``layout`` to the handlers."""
    h = Handlers(studio)
    R = ui.revision  # the page's token of the text it shows: every save of the text is based on it
    S = ui.settings
    model = dict(concurrency_id="model", concurrency_limit=studio.config.concurrency)
    quick = dict(concurrency_limit=None, show_progress=HIDDEN)
    VIEW = [ui.session, ui.editor, ui.title, ui.chips, ui.spec, ui.chips_html, ui.form, *S, ui.drafts, ui.status]
    h.view_len = len(VIEW)  # a failed open keeps every part of the view but the status
    RULES = [ui.session, ui.chips, ui.spec, ui.chips_html, ui.form, ui.status]
    CHECK = [ui.highlight, ui.summary, ui.scansion]

    suggest_io = ([ui.editor, ui.instruction, ui.session, *S], [ui.cand, ui.cand_note, ui.session])

    def suggest(ev):
        """Chain a next-word refresh after ``ev``."""
        return ev.then(h.candidates, *suggest_io, api_visibility="private", show_progress="minimal", **model)

    def recheck(ev):
        """Chain check + save + suggestions after a change of rules or draft."""
        ev = ev.then(with_revision(h.edited), [ui.editor, ui.session, *S, R], CHECK + [R, ui.browser],
                     api_visibility="private", **quick)
        return suggest(ev)

    # The text itself: every change is checked and saved (typing, streaming, inserts, undo),
    # compare-and-set on the page's token, which the answer moves on.
    ui.editor.change(with_revision(h.edited), [ui.editor, ui.session, *S, R], CHECK + [R, ui.browser],
                     api_name="studio_check", trigger_mode="always_last", **quick)
    ui.editor.blur(h.candidates, *suggest_io, api_visibility="private", show_progress="minimal", **model)
    ui.cand_refresh.click(h.candidates, *suggest_io, api_name="studio_candidates", show_progress="minimal", **model)

    # The page's Generate first copies the Steering tab into the session (studio_generate
    # called as an endpoint skips that step and runs unsteered, as before).
    sh = steering.wire(ui, studio, demo)
    gen = ui.generate.click(sh.sync, [ui.session, *ui.steering_inputs], [ui.session],
                            api_visibility="private", **quick)
    gen = gen.then(with_revision(h.generate), [ui.editor, ui.instruction, ui.session, *S, R],
                   [ui.editor, ui.status, ui.session, R], api_name="studio_generate",
                   show_progress="minimal", **model)
    suggest(gen)
    h.variant_slots = ui.variant_texts
    var = ui.variants.click(sh.sync, [ui.session, *ui.steering_inputs], [ui.session],
                            api_visibility="private", **quick)
    var.then(h.variants, [ui.editor, ui.instruction, ui.session, *S],
             [ui.variants_box, *ui.variant_texts, ui.session, ui.status], api_name="studio_variants",
             show_progress="minimal", **model)
    for i, btn in enumerate(ui.variant_use):
        suggest(btn.click(lambda draft, session, tok, i=i: h.use_variant(i, draft, session, tok),
                          [ui.editor, ui.session, R],
                          [ui.editor, ui.variants_box, ui.session, ui.status],
                          api_name=f"studio_use_variant_{i + 1}", **quick))
    ui.stop.click(h.stop, None, [ui.status], api_name="studio_stop", **quick)
    suggest(ui.one_word.click(with_revision(h.one_word), [ui.editor, ui.instruction, ui.session, *S, R],
                              [ui.editor, ui.session, ui.status], api_name="studio_one_word", **model))
    suggest(ui.cand.click(with_revision(h.pick), [ui.cand, ui.editor, ui.session, R], [ui.editor, ui.session, ui.status],
                          api_name="studio_pick", **quick))
    suggest(ui.undo.click(with_revision(h.undo), [ui.editor, ui.session, R], [ui.editor, ui.session, ui.status],
                          api_name="studio_undo", **quick))
    suggest(ui.redo.click(with_revision(h.redo), [ui.editor, ui.session, R], [ui.editor, ui.session, ui.status],
                          api_name="studio_redo", **quick))

    # Rules.
    recheck(ui.rule_add.click(h.rule_add, [ui.rule_name, ui.rule_arg, ui.session], RULES,
                              api_name="studio_add_rule", **quick))
    recheck(ui.rule_update.click(h.rule_update, [ui.chips, ui.rule_name, ui.rule_arg, ui.session], RULES,
                                 api_name="studio_update_rule", **quick))
    recheck(ui.rule_remove.click(h.rule_remove, [ui.chips, ui.session], RULES,
                                 api_name="studio_remove_rule", **quick))
    recheck(ui.rule_clear.click(h.rule_clear, [ui.session], RULES, api_name="studio_clear_rules", **quick))
    for ev in (ui.spec.submit, ui.spec_apply.click):
        recheck(ev(h.spec_apply, [ui.spec, ui.session], RULES, api_name="studio_apply_spec", **quick))
    recheck(ui.form.input(h.form_changed, [ui.form, ui.session], RULES, api_name="studio_form", **quick))
    ui.chips.select(h.chip_selected, [ui.chips], [ui.rule_name, ui.rule_arg, ui.rule_help],
                    api_visibility="private", **quick)
    ui.rule_name.input(h.rule_picked, [ui.rule_name], [ui.rule_help, ui.rule_arg], api_visibility="private", **quick)
    for label, btn in ui.presets.items():
        recheck(btn.click(lambda letter, bank, arg, session, label=label: h.preset(label, letter, bank, arg, session),
                          [ui.taut_letter, ui.word_bank, ui.preset_arg, ui.session], RULES,
                          api_name="studio_preset_" + rules.preset_slug(label), **quick))

    # Settings: saved with the draft; the mode shows or hides the instruction box.
    for comp in S:
        comp.change(h.settings_changed, [ui.editor, ui.session, *S], [ui.browser, ui.instruction],
                    api_visibility="private", **quick)
    ui.model_load.click(h.load_model, [ui.model], [ui.status], api_name="studio_load_model", **model)

    # Drafts.
    recheck(ui.drafts.input(h.open_draft, [ui.drafts, ui.session], VIEW, api_name="studio_open_draft", **quick))
    recheck(ui.new.click(h.new_draft, [ui.session], VIEW, api_name="studio_new_draft", **quick))
    recheck(ui.delete.click(h.delete_draft, [ui.session], VIEW, api_name="studio_delete_draft", **quick))
    recheck(ui.import_btn.upload(h.import_draft, [ui.import_btn, ui.session], VIEW,
                                 api_name="studio_import_draft", **quick))
    ui.drafts_tab.select(h.draft_list, [ui.session], [ui.drafts], api_name="studio_list_drafts", **quick)
    ui.rename.click(h.rename, [ui.title, ui.session], [ui.session, ui.drafts, ui.chips_html, ui.status],
                    api_name="studio_rename_draft", **quick)
    for fmt, btn in ui.export.items():
        btn.click(with_revision(lambda draft, session, *vals, fmt=fmt, revision="":
                                h.export(fmt, draft, session, *vals, revision=revision)),
                  [ui.editor, ui.session, *S, R], [ui.export_file, ui.status],
                  api_name=f"studio_export_{fmt}", **quick)

    ui.model_timer.tick(h.model_status, None, [ui.model_banner, ui.model_timer], api_visibility="private",
                        show_progress=HIDDEN, concurrency_limit=None)

    # On load: the browser's copy of the open draft (or the server's, whichever is newer).
    recheck(demo.load(h.restore, [ui.browser, ui.session], VIEW, api_visibility="private", show_progress=HIDDEN))
