"""Scripting endpoints: the studio's actions with plain arguments, for ``gradio_client``.

    from gradio_client import Client
    c = Client("http://127.0.0.1:7860/")
    c.predict("The old house", "lipogram:e", api_name="/generate")   # final text
    for text in c.submit("Once", "syllables:1", api_name="/generate"): ...  # streamed

Stateless (no session state): constraints travel as spec strings, as on the command line.
Errors come back as readable messages (``gr.Error``), never stack traces: every argument
is checked for type here (a script can send anything), and a failure while streaming is
reported the same way as one before it.
"""

# No ``from __future__ import annotations``: gr.api reads these type hints at runtime.

from typing import Iterator

import gradio as gr

from constraints.base import entries
from studio.decode.settings import DEFAULT_REPETITION_PENALTY, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, DEFAULT_TOP_P

from studio.ui import rules, values
from studio.ui.work import SettingsIn, Studio, check_view, readable


def _fail(e: BaseException) -> gr.Error:
    return gr.Error(readable(e), print_exception=False)


def add_endpoints(studio: Studio) -> None:
    """Register the endpoints in the current Blocks context."""
    cfg = studio.config
    model_slot = dict(concurrency_id="model", concurrency_limit=cfg.concurrency)

    def generate(prompt: str, constraints: str = "", form: str = "", max_new_tokens: int = 40,
                 temperature: float = DEFAULT_TEMPERATURE, top_k: int = DEFAULT_TOP_K,
                 top_p: float = DEFAULT_TOP_P, repetition_penalty: float = DEFAULT_REPETITION_PENALTY, seed: int = -1, mode: str = "continue",
                 model: str = "", search: int = 0, request: gr.Request = None) -> Iterator[str]:
        """Write after ``prompt`` under the constraints (a spec string) and form; streams the
        generated text so far (the prompt is not repeated).  ``seed`` < 0: random;
        ``search``: lines tried per line (0: automatic, 4 for a poem, 1 for prose)."""
        try:
            prompt, constraints, form, model, mode = _texts(prompt=prompt, constraints=constraints, form=form,
                                                            model=model, mode=mode)
            s = SettingsIn(model, mode, temperature, top_k, top_p, repetition_penalty, max_new_tokens, seed, search)
            active = rules.from_spec_text(constraints)
            if mode == "instruct":
                gen, _note, _base = studio.start("", active, _form(form), s, instruction=prompt)
            else:
                gen, _note, _base = studio.start(prompt, active, _form(form), s)
        except Exception as e:
            raise _fail(e) from None
        session = request.session_hash if request is not None else "api"
        text = ""
        yield text
        try:
            for text in studio.stream(gen, session):
                yield text
        except Exception as e:  # the row failed in the decoder (a bad seed, a model error)
            raise _fail(e) from None
        if gen.result is not None and gen.result.stop_reason == "dead_end":
            gr.Warning(gen.result.message)

    def variants(prompt: str, constraints: str = "", form: str = "", k: int = 3, max_new_tokens: int = 40,
                 temperature: float = DEFAULT_TEMPERATURE, top_k: int = DEFAULT_TOP_K,
                 top_p: float = DEFAULT_TOP_P, repetition_penalty: float = DEFAULT_REPETITION_PENALTY,
                 seed: int = -1, mode: str = "continue", model: str = "") -> list[str]:
        """``k`` continuations of ``prompt`` decoded side by side (one batch), each obeying
        the constraints; seeds ``seed``, ``seed + 1``, ... (``seed`` < 0: random)."""
        try:
            prompt, constraints, form, model, mode = _texts(prompt=prompt, constraints=constraints, form=form,
                                                            model=model, mode=mode)
            s = SettingsIn(model, mode, temperature, top_k, top_p, repetition_penalty, max_new_tokens, seed)
            k = values.whole("k", k)
            active = rules.from_spec_text(constraints)
            if mode == "instruct":
                texts, _note, _base = studio.variants("", active, _form(form), s, k=k, instruction=prompt)
            else:
                texts, _note, _base = studio.variants(prompt, active, _form(form), s, k=k)
        except Exception as e:
            raise _fail(e) from None
        return texts

    def candidates(prompt: str, constraints: str = "", form: str = "", n: int = 10,
                   mode: str = "continue", model: str = "") -> list[dict]:
        """The ``n`` most probable next words that obey the constraints: text (what to
        append, leading space included), display, prob."""
        try:
            prompt, constraints, form, model, mode = _texts(prompt=prompt, constraints=constraints, form=form,
                                                            model=model, mode=mode)
            s = SettingsIn(model=model, mode=mode)
            if mode == "instruct":
                return studio.candidates("", rules.from_spec_text(constraints), _form(form), s,
                                         n=n, instruction=prompt)
            return studio.candidates(prompt, rules.from_spec_text(constraints), _form(form), s, n=n)
        except Exception as e:
            raise _fail(e) from None

    def one_word(prompt: str, constraints: str = "", form: str = "", seed: int = -1,
                 temperature: float = 0.8, model: str = "") -> str:
        """One next word, sampled by probability among those the constraints allow."""
        try:
            prompt, constraints, form, model = _texts(prompt=prompt, constraints=constraints, form=form, model=model)
            s = SettingsIn(model=model, temperature=temperature, seed=seed)
            return studio.one_word(prompt, rules.from_spec_text(constraints), _form(form), s)
        except Exception as e:
            raise _fail(e) from None

    def check(text: str, constraints: str = "", form: str = "") -> dict:
        """Where ``text`` breaks the constraints or the form: ok, violations (start, end, rule,
        message: the first PEREC_MAX_VIOLATIONS by position), total (how many in all), a
        summary, and for a form the per-line report.  At most PEREC_MAX_CHECKS checks run at
        once on the server; the text is capped as a draft is (PEREC_MAX_CHARS)."""
        try:
            text, constraints, form = _texts(text=text, constraints=constraints, form=form)
            return studio.check(text, rules.from_spec_text(constraints), _form(form)).to_dict()
        except Exception as e:
            raise _fail(e) from None

    def parse(constraints: str) -> dict:
        """A spec string, checked: its canonical form and each rule in words."""
        try:
            active = rules.from_spec_text(values.text("constraints", constraints))
        except Exception as e:
            raise _fail(e) from None
        return {"spec": rules.spec_string(active),
                "rules": [{"spec": s, "describe": d} for d, s in rules.chips(active)]}

    def registry() -> list[dict]:
        """Every constraint the studio knows: name, level, description, example."""
        return [{"name": e.name, "level": e.level, "description": e.description,
                 "example": e.example, "takes_arg": e.takes_arg} for e in entries()]

    def status() -> dict:
        """The model's state: phase (idle, converting, loading, ready, failed), a sentence,
        and whether Generate can start at once."""
        from models.loading import PROGRESS

        return {"phase": PROGRESS.phase, "describe": PROGRESS.describe(), "ready": studio.engine_ready("")}

    def stop(request: gr.Request = None) -> int:
        """Stop this client's running generations (within one decoding step); returns how many."""
        return studio.running.stop(request.session_hash) if request is not None else 0

    gr.api(generate, api_name="generate", **model_slot)
    gr.api(variants, api_name="variants", **model_slot)
    gr.api(candidates, api_name="candidates", **model_slot)
    gr.api(one_word, api_name="one_word", **model_slot)
    gr.api(check, api_name="check", concurrency_limit=None)
    gr.api(parse, api_name="parse", concurrency_limit=None)
    gr.api(registry, api_name="constraints", concurrency_limit=None)
    gr.api(stop, api_name="stop", concurrency_limit=None)
    gr.api(status, api_name="status", concurrency_limit=None)


def _form(form: str) -> str:
    return rules.check_form_spec(form) if form and form.strip() else ""


def _texts(**named) -> list[str]:
    """The text arguments, in order, each checked to be text (None reads as blank)."""
    return [values.text(name, v) for name, v in named.items()]
