"""The page: the editor and its buttons on the left; next words, constraints, settings, drafts
and steering on the right, in a quiet theme that reads like a writing desk.  ``build_app`` makes
the components, then callbacks.wire connects them.
"""

from __future__ import annotations

import os
import re
import sys
from types import SimpleNamespace

import gradio as gr
from gradio.exceptions import ComponentProcessingError

from studio.ui.drafts import DraftStore
from studio.decode.engine import Engine
from studio.decode.settings import (DEFAULT_REPETITION_PENALTY, DEFAULT_TEMPERATURE, DEFAULT_TOP_K,
                             DEFAULT_TOP_P)

from studio.ui import callbacks, guard, rules, steering, values
from studio.ui.config import UiConfig, rules_for, rules_line
from studio.ui.endpoints import add_endpoints
from studio.ui.persistence import EMPTY_BROWSER
from studio.ui.session import Session
from studio.ui.signing import signed_browser_state
from studio.request import DEFAULT_POEM_SEARCH
from studio.ui.work import MAX_SEARCH, SCANSION_HEADERS, Studio

VARIANTS = 3  # continuations the Variants button shows side by side

TITLE = "Perec — write under constraints"

# Gradio 6 takes theme and CSS in launch(); StudioBlocks supplies ours there, so
# `demo.launch()` in app.py and `perec serve` both get them without repeating them.
# System fonts only: a Space or an offline machine must not fetch web fonts.
THEME = gr.themes.Soft(
    primary_hue="orange",
    secondary_hue="amber",
    neutral_hue="stone",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)

CSS = """
.gradio-container { max-width: 1480px !important; }
#masthead h1 { font-family: Georgia, 'Times New Roman', serif; font-weight: 600; margin: 0; }
#masthead p { margin: 2px 0 0 0; color: var(--body-text-color-subdued); }
#editor textarea {
  font-family: Georgia, 'Iowan Old Style', 'Times New Roman', serif;
  font-size: 1.12rem; line-height: 1.65; padding: 18px 20px;
}
#active-chips { min-height: 28px; }
.draft-title { font-family: Georgia, serif; font-style: italic; margin-right: 10px; }
.chip {
  display: inline-block; padding: 2px 10px; margin: 2px 4px 2px 0; border-radius: 999px;
  background: var(--color-accent-soft); border: 1px solid var(--border-color-accent);
  font-size: 0.85rem;
}
.chip-form { background: #e0f2fe; border-color: #7dd3fc; }
.chip-none { background: transparent; border-style: dashed; color: var(--body-text-color-subdued); }
#chips label { border-radius: 999px !important; }
#status { min-height: 1.6em; }
#status p { margin: 0; }
.cand-bar { display: flex; align-items: center; gap: 8px; }
.cand-bar .bar { height: 10px; border-radius: 3px; background: var(--color-accent); min-width: 2px; }
.cand-bar .pct { font-variant-numeric: tabular-nums; color: var(--body-text-color-subdued);
                 font-size: 0.85rem; }
#candidates td { cursor: pointer; }
#spec textarea, #spec input { font-family: ui-monospace, Menlo, monospace; }
"""


class StudioBlocks(gr.Blocks):
    """gr.Blocks whose ``launch()`` defaults to the studio's theme and CSS."""

    def launch(self, *args, **kwargs):
        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        cap = getattr(getattr(self, "studio", None), "config", None)
        if cap is not None:
            _announce_rules(cap, kwargs)
            if cap.max_upload:
                kwargs.setdefault("max_file_size", cap.max_upload)  # gradio refuses bigger uploads
        return super().launch(*args, **kwargs)

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        """Gradio's reading of the values sent, after the session's turn comes
        (studio/ui/pacing.py), each first checked against its component
        (studio/ui/guard.py: any client can call any page event, hidden or not), and one it
        cannot read (a word where a slider wants a number: only a script can send that)
        refused in one line that names the field, instead of Gradio's opaque "the upstream
        app raised an exception"."""
        studio = getattr(self, "studio", None)
        cfg = getattr(studio, "config", None)
        try:
            if studio is not None:
                await studio.pacer.pace(state)  # first: a flood waits before it costs anything
            guard.check_inputs(block_fn.inputs, inputs, state, space=bool(cfg and cfg.space))
        except ValueError as e:
            raise gr.Error(str(e), print_exception=False) from None
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except ComponentProcessingError as e:
            raise gr.Error(unreadable(block_fn.inputs, inputs, e), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001  (a file reference gradio refuses, a bad data model)
            raise gr.Error(f"A value sent to the studio could not be read ({type(e).__name__}).",
                           print_exception=False) from None


class ExposedError(ValueError):
    """A studio built with local rules, launched where other machines can reach it."""


def _announce_rules(cfg: UiConfig, kwargs: dict) -> None:
    """Refuse to serve local rules to other machines (unless the writer opted out), and
    say in one line which rules are in force.  The rules were fixed when the page was
    built, so a launch that contradicts them is refused rather than half-applied."""
    space, why = rules_for(kwargs.get("server_name"), kwargs.get("share"))
    if space and not cfg.space:
        raise ExposedError(f"this studio was built with local rules, but {why}: build it with Space "
                           "rules, or set PEREC_SPACE=0 to keep local rules there")
    if not kwargs.get("quiet"):
        print(rules_line(cfg.space, why if space == cfg.space else "chosen when the studio was built"),
              file=sys.stderr)


def unreadable(blocks, inputs, e: Exception) -> str:
    """One line for a value a component could not read (Gradio names it by position)."""
    m = re.search(r"at index (\d+)", str(e))
    i = int(m.group(1)) if m else -1
    if not 0 <= i < min(len(blocks), len(inputs)):
        return "A value sent to the studio could not be read."
    block = blocks[i]
    name = getattr(block, "label", None) or type(block).__name__
    if isinstance(block, (gr.Slider, gr.Number)):
        return f"{name} must be a number (got {values.got(inputs[i])})"
    return f"{name} cannot take {values.got(inputs[i])}"


def build_app(engine: Engine | None = None, *, space: bool | None = None,
              config: UiConfig | None = None, store: DraftStore | None = None,
              adapter_root=None) -> gr.Blocks:
    """The studio as a gr.Blocks.  ``engine``: the default model's engine (loaded lazily
    when None); ``space``: Space mode (default: from PEREC_SPACE / SPACE_ID);
    ``adapter_root``: the Steering tab's adapter folder (default: $PEREC_CACHE/adapters)."""
    cfg = config or UiConfig.from_env(space=space)
    studio = Studio(cfg, engine=engine, store=store, adapter_root=adapter_root)
    if engine is None and cfg.warm_up:
        studio.warm_up()
    with StudioBlocks(title=TITLE, analytics_enabled=False) as demo:
        ui = _layout(cfg)
        add_endpoints(studio)  # first: the scripting names must not be taken by page events
        callbacks.wire(ui, studio, demo)
    # Gradio's queue rebuilds a pandas summary of its last (up to 10,000) events after every
    # event, for its monitoring page: under a flood of cheap events that alone took a core
    # and slowed every writer's stream 3-7x (bench/abuse.py).  Its own settings bound it: a
    # summary every 100 events, over the last 500 (read when the queue is made, just below).
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "500")
    demo.queue(default_concurrency_limit=cfg.concurrency, max_size=64 if cfg.space else None)
    demo.studio = studio  # for tests and embedding: the shared state behind the page
    return demo


def _layout(cfg: UiConfig) -> SimpleNamespace:
    ui = SimpleNamespace()
    ui.session = gr.State(Session())
    # Signed by the server, so a copy sent back on load is trusted only if this server wrote it.
    ui.browser = signed_browser_state(EMPTY_BROWSER, storage_key="perec-studio", signing_key=cfg.browser_key())
    with gr.Row(elem_id="masthead"):
        gr.Markdown(f"# Perec\nWrite with a language model under constraints: lipograms, one "
                    f"syllable, tautograms, forms, word banks.{' (shared Space)' if cfg.space else ''}")
    # While the model loads (or converts, on the first start) the page works without it
    # and this line says how far the model is; it hides once the model is ready.
    ui.model_banner = gr.Markdown("", elem_id="model-status", visible=False)
    ui.model_timer = gr.Timer(1.0)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=480):
            _editor_column(ui, cfg)
        with gr.Column(scale=2, min_width=380):
            _side_column(ui, cfg)
    return ui


def _editor_column(ui, cfg: UiConfig) -> None:
    ui.chips_html = gr.HTML(rules.chips_html([], ""), elem_id="active-chips")
    ui.editor = gr.Textbox(label="Draft", lines=16, max_lines=48, elem_id="editor", autofocus=True,
                           max_length=cfg.max_chars,
                           placeholder="Begin here, and let the model go on in your constraints…")
    # The page's token of the text the editor shows ("<draft id>:<revision>"): every save of
    # the text says what it is based on, so the server drops a late echo of a streamed piece
    # (studio/ui/drafts.py text_decision).  Held in the page, not the session: it must be
    # what the page had when the event fired, not what the server knows now.
    ui.revision = gr.Textbox("", visible=False, label="Draft revision", elem_id="revision")
    ui.instruction = gr.Textbox(label="Instruction (instruct mode)", lines=2, visible=False,
                                elem_id="instruction", placeholder="e.g. Write about the sea.")
    with gr.Row(equal_height=True):
        ui.generate = gr.Button("Generate", variant="primary", elem_id="generate", scale=2, min_width=110)
        ui.stop = gr.Button("Stop", variant="stop", elem_id="stop", scale=1, min_width=70)
        ui.variants = gr.Button("Variants", elem_id="variants", scale=1, min_width=90)
        ui.one_word = gr.Button("One more word", elem_id="one-word", scale=2, min_width=130)
        ui.undo = gr.Button("↶ Undo", elem_id="undo", scale=1, min_width=70)
        ui.redo = gr.Button("↷ Redo", elem_id="redo", scale=1, min_width=70)
    ui.status = gr.Markdown("", elem_id="status")
    # Variants: continuations decoded side by side; the writer keeps one (Undo takes it back).
    with gr.Group(visible=False, elem_id="variants-box") as ui.variants_box:
        ui.variant_texts, ui.variant_use = [], []
        with gr.Row(equal_height=True):
            for i in range(VARIANTS):
                with gr.Column(min_width=160):
                    ui.variant_texts.append(gr.Textbox(label=f"Variant {i + 1}", lines=5, interactive=False,
                                                       elem_id=f"variant-{i + 1}"))
                    ui.variant_use.append(gr.Button(f"Use variant {i + 1}", size="sm",
                                                    elem_id=f"variant-use-{i + 1}"))
    with gr.Group():
        ui.highlight = gr.HighlightedText(label="Live check", elem_id="check", combine_adjacent=False,
                                          show_legend=True, interactive=False)
        ui.summary = gr.Markdown("", elem_id="check-summary", padding=True)
    ui.scansion = gr.Dataframe(headers=SCANSION_HEADERS, label="Scansion (one row per line)",
                               visible=False, interactive=False, wrap=True, elem_id="scansion")


def _side_column(ui, cfg: UiConfig) -> None:
    with gr.Group():
        ui.cand = gr.Dataset(components=[gr.Textbox(visible=False), gr.HTML(visible=False)],
                             samples=[], headers=["next word", "probability"], type="index",
                             label="Next word — click to add", layout="table", elem_id="candidates",
                             samples_per_page=12)
        with gr.Row():
            ui.cand_note = gr.Markdown("", elem_id="cand-note")
            ui.cand_refresh = gr.Button("↻ Suggest", size="sm", scale=0, elem_id="cand-refresh")
    with gr.Tabs():
        with gr.Tab("Constraints", id="constraints"):
            _constraints_tab(ui)
        with gr.Tab("Settings", id="settings"):
            _settings_tab(ui, cfg)
        with gr.Tab("Drafts", id="drafts") as ui.drafts_tab:
            _drafts_tab(ui)
        with gr.Tab("Steering", id="steering") as ui.steering_tab:
            steering.layout(ui, cfg)


def _constraints_tab(ui) -> None:
    gr.Markdown("**Presets**")
    with gr.Row():
        ui.presets = {label: gr.Button(label, size="sm", elem_id="preset-" + rules.preset_slug(label).replace("_", "-"))
                      for label in rules.PRESETS}
    with gr.Row():
        ui.taut_letter = gr.Textbox("t", label="Tautogram letter", max_length=1, scale=1, elem_id="taut-letter")
        ui.preset_arg = gr.Textbox("3", label="N, a word, or a phrase (presets)", scale=1,
                                   elem_id="preset-arg")
        ui.word_bank = gr.Textbox(rules.DEFAULT_WORD_BANK, label="Word bank (comma-separated)", scale=3,
                                  elem_id="word-bank")
    ui.chips = gr.Radio(choices=[], label="Active rules (click one to edit or remove)", elem_id="chips")
    ui.form = gr.Dropdown(rules.form_choices(), value="", label="Poetic form", allow_custom_value=True,
                          info="haiku, limerick, sonnet… or custom like 5-7-5/ABA", elem_id="form")
    with gr.Row():
        ui.spec = gr.Textbox(label="As a spec (paste into `perec -c`, or type one and press Enter)",
                             elem_id="spec", scale=4)
        ui.spec_apply = gr.Button("Apply", size="sm", scale=1, elem_id="spec-apply")
    with gr.Accordion("Add or edit a rule", open=False):
        choices = rules.entry_choices()
        ui.rule_name = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="Rule",
                                   elem_id="rule-name")
        ui.rule_arg = gr.Textbox(label="Argument", elem_id="rule-arg")
        ui.rule_help = gr.Markdown(rules.entry_help(choices[0][1] if choices else None))
        with gr.Row():
            ui.rule_add = gr.Button("Add", variant="primary", size="sm", elem_id="rule-add")
            ui.rule_update = gr.Button("Update selected", size="sm", elem_id="rule-update")
            ui.rule_remove = gr.Button("Remove selected", size="sm", elem_id="rule-remove")
            ui.rule_clear = gr.Button("Clear all", size="sm", elem_id="rule-clear")


def _settings_tab(ui, cfg: UiConfig) -> None:
    where = "a Hugging Face id" if cfg.space else "a Hugging Face id or a local folder"
    with gr.Row():
        ui.model = gr.Textbox("", label="Model", placeholder="embedded (SmolLM2-135M-Instruct)",
                              info=f"Blank for the embedded model, or {where}.", scale=3, elem_id="model")
        ui.model_load = gr.Button("Load", size="sm", scale=1, elem_id="model-load")
    ui.mode = gr.Radio([("Continue the draft", "continue"), ("Follow an instruction", "instruct")],
                       value="continue", label="Mode", elem_id="mode")
    ui.temperature = gr.Slider(0.05, 2.0, DEFAULT_TEMPERATURE, step=0.05, label="Temperature")
    with gr.Row():
        ui.top_k = gr.Slider(0, 200, DEFAULT_TOP_K, step=1, label="Top-k (0 = off)")
        ui.top_p = gr.Slider(0.05, 1.0, DEFAULT_TOP_P, step=0.01, label="Top-p (1 = off)")
    ui.rep = gr.Slider(1.0, 2.0, DEFAULT_REPETITION_PENALTY, step=0.01, label="Repetition penalty (1 = off)")
    with gr.Row():
        ui.max_tokens = gr.Slider(1, cfg.max_tokens_cap, cfg.default_max_tokens, step=1,
                                  label=f"Max tokens (up to {cfg.max_tokens_cap})", elem_id="max-tokens")
        ui.seed = gr.Number(-1, label="Seed (-1 = random)", precision=0, elem_id="seed")
    ui.search = gr.Slider(0, MAX_SEARCH, 0, step=1, elem_id="search",
                          label="Search width: each line tried this many ways, the likeliest kept "
                                f"(0 = automatic: {DEFAULT_POEM_SEARCH} for a poem, 1 for prose)")
    ui.settings = [ui.model, ui.mode, ui.temperature, ui.top_k, ui.top_p, ui.rep, ui.max_tokens, ui.seed,
                   ui.search]


def _drafts_tab(ui) -> None:
    # Custom values allowed so a stale or foreign id reaches the handler and gets a readable no.
    ui.drafts = gr.Dropdown([], label="Your drafts (choose one to open it)", elem_id="drafts",
                            allow_custom_value=True)
    with gr.Row():
        ui.title = gr.Textbox(label="Title", scale=3, elem_id="title")
        ui.rename = gr.Button("Rename", size="sm", scale=1, elem_id="rename")
    with gr.Row():
        ui.new = gr.Button("New draft", size="sm", elem_id="new-draft")
        ui.delete = gr.Button("Delete this draft", size="sm", variant="stop", elem_id="delete-draft")
    gr.Markdown("Every change is saved as you go, on the server and in this browser.")
    with gr.Row():
        ui.export = {fmt: gr.Button(f"Export .{fmt}", size="sm", elem_id=f"export-{fmt}")
                     for fmt in ("txt", "md", "json")}
    ui.export_file = gr.File(label="Download", visible=False, interactive=False, elem_id="export-file")
    ui.import_btn = gr.UploadButton("Import .json", file_types=[".json"], size="sm", elem_id="import")
