"""The Steering tab: adapters (the table on disk, a weighted mix, training from an upload
with a progress bar) and controllers (word bank, prompt contrast, DExperts, discriminator).

What the writer sets here is copied into their ``Session`` when they press Generate (a
private event chained before ``studio_generate``), as a ``SteeringIn``; ``Studio.start``
turns it into ``Engine.stream``'s ``source`` and ``controllers`` through
``studio.steer.steering``.  Empty fields are off.  Next words and "One more word" stay
unsteered.  The scripting endpoints, the API and the CLI steer through ``studio.steer``.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from studio.steer import DEFAULT_ALPHA, DEFAULT_BANK_STRENGTH, DEFAULT_DISC_STRENGTH, DEFAULT_STEER_STRENGTH

from studio.ui.config import UiConfig
from studio.ui.session import Session
from studio.ui.work import Studio, UserError, readable

TABLE_HEADERS = ["adapter", "base model", "method", "rank", "steps", "loss", "problem"]
MIX_HEADERS = ["use", "adapter", "weight"]
TRAIN_TYPES = [".txt", ".md", ".jsonl"]
DEFAULT_TRAIN_STEPS = 100
LOCAL_MAX_TRAIN_STEPS = 2000
RANKS = [4, 8, 16, 32]

NOTE = ("Steering shapes **Generate** only: the next-word list and *One more word* stay "
        "unsteered. Empty fields are off. Adapters and controllers add to the hard rules, "
        "which still win.")
SPACE_TRAIN_NOTE = ("Training is off on this shared Space (it would hold the server for minutes "
                    "and write into a folder every writer shares). Run Perec on your own machine "
                    "(`perec serve`, or `perec train-adapter`) to train adapters.")


# ----------------------------------------------------------------- what the panel sends


@dataclass
class SteeringIn:
    """The Steering tab, as the page sends it.  Plain values only (no I/O here), so it is
    cheap to copy into the session; ``kwargs`` loads and checks everything."""

    adapters: list[tuple[str, float]] = field(default_factory=list)  # (name on disk or folder, weight)
    bank_words: str = ""
    bank_file: str | None = None
    bank_strength: float = DEFAULT_BANK_STRENGTH
    steer_text: str = ""
    steer_strength: float = DEFAULT_STEER_STRENGTH
    expert: str = ""
    anti_expert: str = ""
    alpha: float = DEFAULT_ALPHA
    disc_a: str | None = None  # examples to steer toward (.txt), or a text,label .csv
    disc_b: str | None = None  # examples to steer away from (.txt)
    disc_target: str = ""  # the CSV label to steer toward (blank: a 'positive'-like label)
    disc_strength: float = DEFAULT_DISC_STRENGTH

    def is_off(self) -> bool:
        return not (self.adapters or self.bank_words.strip() or self.bank_file or self.steer_text.strip()
                    or self.expert.strip() or self.anti_expert.strip() or self.disc_a or self.disc_b)

    def kwargs(self, engine, *, root: str | Path | None = None, space: bool = False) -> dict:
        """``source`` and ``controllers`` for ``engine.stream`` (empty when all is off).
        Every problem becomes a UserError that names the adapter, file or field."""
        if self.is_off():
            return {}
        from models.adapters import AdapterError
        from studio.steer import steering

        kw: dict = {}
        try:
            if self.adapters:
                kw["adapter"] = [(resolve_adapter(a, root, space), _number(w, f"weight of '{a}'"))
                                 for a, w in self.adapters]
            bank = self._bank()
            if bank is not None:
                kw["bank"] = bank
            if self.steer_text.strip():
                from models.controllers import PromptContrast

                kw["steer"] = PromptContrast(self.steer_text, _number(self.steer_strength, "prompt contrast strength"))
            if self.expert.strip() or self.anti_expert.strip():
                if not (self.expert.strip() and self.anti_expert.strip()):
                    raise UserError("DExperts needs both an expert and an anti-expert adapter")
                from models.controllers import ExpertAntiExpert

                kw["expert"] = ExpertAntiExpert(resolve_adapter(self.expert, root, space),
                                                resolve_adapter(self.anti_expert, root, space),
                                                _number(self.alpha, "DExperts alpha"))
            if self.disc_a or self.disc_b:
                from models.controllers import DiscriminatorGuidance

                kw["discriminator"] = DiscriminatorGuidance(
                    self._discriminator(engine), _number(self.disc_strength, "discriminator strength"))
            return steering(engine, **kw)
        except UserError:
            raise
        except (AdapterError, ValueError, OSError) as e:  # DiscriminatorError is a ValueError
            raise UserError(f"Steering: {readable(e)}") from None

    def _bank(self):
        from models.controllers import WordBank, read_word_list, split_words

        words = split_words(self.bank_words)
        if self.bank_file:
            try:
                words += read_word_list(self.bank_file)
            except ValueError as e:  # name the upload, not its temporary path
                raise UserError(str(e).replace(self.bank_file, f"'{Path(self.bank_file).name}'")) from None
        if not words:
            return None
        strength = _number(self.bank_strength, "word bank strength")
        if strength == 0:
            return None  # strength 0 changes nothing: off
        return WordBank(words, strength)

    def _discriminator(self, engine):
        a, b = self.disc_a, self.disc_b
        if not a:
            raise UserError("the discriminator needs file A (examples to steer toward, or a text,label CSV)")
        if Path(a).suffix.lower() == ".csv":
            if b:
                raise UserError("give either one text,label CSV (as A) or two text files A and B, not both")
            return _trained(engine, ("csv", a, self.disc_target.strip() or None))
        if not b:
            raise UserError("the discriminator needs file B too (examples to steer away from), "
                            "or one text,label CSV as A")
        return _trained(engine, ("files", a, b))

    def describe(self) -> str:
        """A short line for the status: what steers this generation."""
        parts = [f"{Path(a).name} ×{w:g}" if isinstance(w, (int, float)) else Path(a).name
                 for a, w in self.adapters]
        if self.bank_words.strip() or self.bank_file:
            parts.append(f"word bank {self.bank_strength:+g}")
        if self.steer_text.strip():
            parts.append(f"prompt contrast γ {self.steer_strength:g}")
        if self.expert.strip():
            parts.append(f"DExperts α {self.alpha:g}")
        if self.disc_a:
            parts.append(f"discriminator {self.disc_strength:g}")
        return "Steered by " + ", ".join(parts) + "." if parts else ""


def _number(value, what: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be a number (got {value!r})") from None
    if not math.isfinite(x):
        raise UserError(f"{what} must be a finite number (got {value!r})")
    return x


def adapter_root(studio: Studio) -> Path:
    from models.adapters import adapter_folder

    return adapter_folder(studio.adapter_root)


def resolve_adapter(name: str, root: str | Path | None, space: bool = False) -> str:
    """An adapter's folder: a name in the adapter folder, or (not on a Space) any folder."""
    from models.adapters import adapter_folder

    name = (name or "").strip()
    if not name:
        raise UserError("an adapter row has no name")
    r = adapter_folder(root)
    if "/" not in name and "\\" not in name and (r / name).is_dir():
        return str(r / name)
    if space:
        raise UserError(f"no adapter named '{name}' in the adapter folder (refresh the table)")
    p = Path(name).expanduser()
    if not p.exists():
        raise UserError(f"no adapter '{name}': neither a name in the adapter folder ({r}) nor an existing folder")
    return str(p)


# Discriminators trained from uploads, so each Generate does not retrain them.
_DISC: "OrderedDict[tuple, object]" = OrderedDict()
_DISC_MAX = 8
_disc_lock = threading.Lock()


def _trained(engine, spec: tuple):
    from models.discriminator import Discriminator

    files = [s for s in spec[1:] if s and Path(s).suffix]
    stamp = []
    for f in files:
        try:
            st = Path(f).stat()
        except FileNotFoundError:
            raise UserError(f"the discriminator file '{Path(f).name}' is gone; upload it again") from None
        stamp.append((f, st.st_size, st.st_mtime_ns))
    key = (id(engine.model), engine.name, spec, tuple(stamp))
    with _disc_lock:
        if key in _DISC:
            _DISC.move_to_end(key)
            return _DISC[key]
    if spec[0] == "csv":
        d = Discriminator.from_csv(engine, spec[1], spec[2])
    else:
        d = Discriminator.from_files(engine, spec[1], spec[2])
    with _disc_lock:
        _DISC[key] = d
        while len(_DISC) > _DISC_MAX:
            _DISC.popitem(last=False)
    return d


# ----------------------------------------------------------------- tables


def table_rows(rows: list[dict]) -> list[list]:
    return [[r["name"], r.get("base_model") or "", r.get("method") or "", r.get("rank") or "",
             "" if r.get("steps") is None else r["steps"],
             "" if r.get("loss") is None else round(float(r["loss"]), 4), r.get("error") or ""] for r in rows]


def mix_rows(rows: list[dict], current) -> list[list]:
    """The mix table for the adapters on disk, keeping what the writer ticked and weighted
    (and rows for folders that are not in the adapter folder)."""
    keep = {name: (use, w) for use, name, w in parse_mix(current, strict=False)}
    names = [r["name"] for r in rows if not r.get("error")]
    out = [[keep.get(n, (False, 1.0))[0], n, keep.get(n, (False, 1.0))[1]] for n in names]
    out += [[use, n, w] for n, (use, w) in keep.items() if n not in names and use]
    return out


def _truthy(x) -> bool:
    if isinstance(x, str):
        return x.strip().lower() in ("true", "1", "yes", "y", "x", "✓", "on")
    if isinstance(x, float) and math.isnan(x):
        return False
    return bool(x)


def _rows_of(value) -> list[list]:
    if value is None:
        return []
    if hasattr(value, "values") and hasattr(value, "columns"):  # a pandas DataFrame
        return value.values.tolist()
    if isinstance(value, dict):  # {"headers": ..., "data": ...}
        return list(value.get("data") or [])
    return [list(r) for r in value]


def parse_mix(value, strict: bool = True) -> list[tuple[bool, str, float]]:
    """(use, adapter, weight) per row of the mix table; a blank weight is 1."""
    out = []
    for row in _rows_of(value):
        row = list(row) + [None] * (3 - len(row))
        use, name, w = row[:3]
        name = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name).strip()
        if not name:
            continue
        if w is None or (isinstance(w, str) and not w.strip()) or (isinstance(w, float) and math.isnan(w)):
            w = 1.0
        try:
            w = float(w)
        except (TypeError, ValueError):
            if strict and _truthy(use):
                raise UserError(f"the weight of adapter '{name}' must be a number (got {w!r})") from None
            w = 1.0
        out.append((_truthy(use), name, w))
    return out


def parse_extra(text: str) -> list[tuple[str, float]]:
    """'DIR[:W]' specs, one per line or comma-separated."""
    from studio.steer import parse_weighted

    out = []
    for spec in re.split(r"[\n,]+", text or ""):
        if spec.strip():
            try:
                where, w = parse_weighted(spec.strip(), 1.0, "adapter")
            except ValueError as e:
                raise UserError(str(e)) from None
            out.append((where.strip(), w))
    return out


def _file(f) -> str | None:
    if f is None or f == "":
        return None
    if isinstance(f, (str, Path)):
        return str(f)
    if isinstance(f, dict):
        return f.get("path") or f.get("name")
    return str(getattr(f, "path", None) or getattr(f, "name", None) or f)  # a gradio FileData


# ----------------------------------------------------------------- the tab


def layout(ui, cfg: UiConfig) -> None:
    """The Steering tab's components, on ``ui`` (called inside its gr.Tab)."""
    gr.Markdown(NOTE, elem_id="steer-note")
    with gr.Accordion("Adapters", open=True):
        ui.adapter_table = gr.Dataframe(headers=TABLE_HEADERS, value=[], interactive=False, wrap=True,
                                        label="Adapters on disk", elem_id="adapter-table", max_height=260)
        ui.adapter_mix = gr.Dataframe(
            headers=MIX_HEADERS, datatype=["bool", "str", "number"], value=[], type="array",
            interactive=True, static_columns=[1], label="Mix into Generate: tick and weigh "
            "(base + w·(adapter − base); 1 = the adapter, 0.5 = halfway)", elem_id="adapter-mix")
        ui.adapter_extra = gr.Textbox(label="Other adapter folders (DIR[:WEIGHT], one per line)", lines=1,
                                      visible=not cfg.space, elem_id="adapter-extra")
        ui.adapter_refresh = gr.Button("↻ Refresh", size="sm", elem_id="adapter-refresh")
    with gr.Accordion("Train an adapter", open=False):
        if cfg.space:
            gr.Markdown(SPACE_TRAIN_NOTE, elem_id="train-off")
        else:
            gr.Markdown("LoRA on the model chosen in Settings, from plain text (.txt, .md: it learns "
                        "the style) or JSONL (`text`, `prompt`/`completion`, or `chosen`/`rejected` "
                        "pairs for DPO). A run under an existing name resumes or replaces it.")
        ui.train_file = gr.File(label="Training data (.txt, .md, .jsonl)", file_types=TRAIN_TYPES,
                                interactive=not cfg.space, elem_id="train-file", height=110)
        with gr.Row():
            ui.train_name = gr.Textbox(label="Name", placeholder="e.g. sea-shanties", scale=2,
                                       interactive=not cfg.space, elem_id="train-name")
            ui.train_steps = gr.Number(DEFAULT_TRAIN_STEPS, label=f"Max steps (up to {LOCAL_MAX_TRAIN_STEPS})",
                                       precision=0, minimum=1, maximum=LOCAL_MAX_TRAIN_STEPS, scale=1,
                                       interactive=not cfg.space, elem_id="train-steps")
            ui.train_rank = gr.Dropdown(RANKS, value=8, label="LoRA rank", scale=1,
                                        interactive=not cfg.space, elem_id="train-rank")
        ui.train_btn = gr.Button("Train", variant="primary", size="sm", interactive=not cfg.space,
                                 elem_id="train")
        ui.train_status = gr.Markdown("", elem_id="train-status")
    with gr.Accordion("Word bank", open=False):
        ui.bank_words = gr.Textbox(label="Words to favour (comma, space or newline separated)", lines=2,
                                   elem_id="bank-words")
        with gr.Row():
            ui.bank_file = gr.File(label="…or a word list", file_types=[".txt"], elem_id="bank-file",
                                   height=120, scale=2)
            ui.bank_strength = gr.Slider(-10, 10, DEFAULT_BANK_STRENGTH, step=0.5, label="Strength (negative avoids)",
                                         elem_id="bank-strength", scale=2)
    with gr.Accordion("Prompt contrast", open=False):
        ui.steer_text = gr.Textbox(label="Describe the text you want (off when blank)", lines=2,
                                   placeholder="e.g. A gloomy story about the sea.", elem_id="steer-text")
        ui.steer_strength = gr.Slider(0, 5, DEFAULT_STEER_STRENGTH, step=0.1, label="Strength γ (1 = plain prompting)",
                                      elem_id="steer-strength")
    with gr.Accordion("DExperts", open=False):
        with gr.Row():
            ui.expert = gr.Dropdown([], value=None, label="Expert adapter", allow_custom_value=not cfg.space,
                                    elem_id="expert")
            ui.anti_expert = gr.Dropdown([], value=None, label="Anti-expert adapter",
                                         allow_custom_value=not cfg.space, elem_id="anti-expert")
        ui.alpha = gr.Slider(0, 5, DEFAULT_ALPHA, step=0.1, label="Strength α", elem_id="alpha")
    with gr.Accordion("Discriminator", open=False):
        gr.Markdown("Two text files, one example per line (toward A, away from B), or one CSV "
                    "with `text,label` as A. It trains on the model the first time you Generate.")
        with gr.Row():
            ui.disc_a = gr.File(label="A (toward) or CSV", file_types=[".txt", ".csv"], elem_id="disc-a", height=120)
            ui.disc_b = gr.File(label="B (away from)", file_types=[".txt"], elem_id="disc-b", height=120)
        with gr.Row():
            ui.disc_target = gr.Textbox(label="CSV label to steer toward", placeholder="blank: positive/yes/1…",
                                        elem_id="disc-target")
            ui.disc_strength = gr.Slider(0, 10, DEFAULT_DISC_STRENGTH, step=0.5, label="Strength", elem_id="disc-strength")
    ui.steering_inputs = [ui.adapter_mix, ui.adapter_extra, ui.bank_words, ui.bank_file, ui.bank_strength,
                          ui.steer_text, ui.steer_strength, ui.expert, ui.anti_expert, ui.alpha,
                          ui.disc_a, ui.disc_b, ui.disc_target, ui.disc_strength]


class SteeringHandlers:
    def __init__(self, studio: Studio):
        self.studio = studio

    @property
    def root(self) -> Path:
        return adapter_root(self.studio)

    def collect(self, mix, extra, bank_words, bank_file, bank_strength, steer_text, steer_strength,
                expert, anti, alpha, disc_a, disc_b, disc_target, disc_strength) -> SteeringIn:
        """The panel's values as a SteeringIn (no loading; bad numbers raise UserError)."""
        adapters = [(name, w) for use, name, w in parse_mix(mix) if use]
        if not self.studio.config.space:
            adapters += parse_extra(extra)
        return SteeringIn(adapters=adapters, bank_words=bank_words or "", bank_file=_file(bank_file),
                          bank_strength=bank_strength if bank_strength is not None else DEFAULT_BANK_STRENGTH,
                          steer_text=steer_text or "",
                          steer_strength=steer_strength if steer_strength is not None else DEFAULT_STEER_STRENGTH,
                          expert=expert or "", anti_expert=anti or "",
                          alpha=alpha if alpha is not None else DEFAULT_ALPHA,
                          disc_a=_file(disc_a), disc_b=_file(disc_b), disc_target=disc_target or "",
                          disc_strength=disc_strength if disc_strength is not None else DEFAULT_DISC_STRENGTH)

    def sync(self, session: Session, *vals):
        """Before Generate: keep the writer's steering in their session."""
        try:
            session.steering = self.collect(*vals)
            session.steering_error = ""
        except Exception as e:
            session.steering, session.steering_error = None, readable(e)
        return session

    def refresh(self, mix):
        """The table of adapters on disk, the mix table and the DExperts choices, fresh."""
        from studio.steer import adapter_table

        rows = adapter_table(self.root)
        names = [r["name"] for r in rows if not r.get("error")]
        return (table_rows(rows), mix_rows(rows, mix),
                gr.Dropdown(choices=[""] + names), gr.Dropdown(choices=[""] + names))

    def train(self, file, name, steps, rank, model, mix, progress=gr.Progress()):
        """Train from the upload, with a progress bar; returns status + refreshed tables."""
        try:
            summary = self.train_adapter(file, name, steps, rank, model, progress)
        except Exception as e:
            msg = readable(e)
            gr.Warning(msg)
            return (f"⚠ {html.escape(msg)}",) + self.refresh(mix)
        loss = summary.get("final_loss")
        status = (f"Trained **{html.escape(Path(summary['path']).name)}**: {summary['steps']} steps, "
                  f"{summary['examples']} examples" + (f", final loss {loss:.4f}" if loss is not None else "")
                  + f", {summary['seconds']:g} s. Tick it in the mix to use it.")
        return (status,) + self.refresh(mix)

    def train_adapter(self, file, name, steps, rank, model, progress=None) -> dict:
        """The work behind Train (testable without gradio's event machinery)."""
        from models.adapters import adapters_for
        from studio.steer import adapter_dir_name, train_from_upload

        if self.studio.config.space:
            raise UserError(SPACE_TRAIN_NOTE)
        path = _file(file)
        if not path:
            raise UserError("upload a training file first (.txt, .md or .jsonl)")
        try:
            clean = adapter_dir_name(name)
        except ValueError as e:  # AdapterError
            raise UserError(str(e)) from None
        try:
            steps = int(steps)
            rank = int(rank)
        except (TypeError, ValueError):
            raise UserError("max steps and rank must be whole numbers") from None
        if not 1 <= steps <= LOCAL_MAX_TRAIN_STEPS:
            raise UserError(f"max steps must be between 1 and {LOCAL_MAX_TRAIN_STEPS} (got {steps})")
        if rank < 1:
            raise UserError(f"rank must be at least 1 (got {rank})")
        from models.train import read_training_data

        try:  # bad data fails here, before a model loads or a folder appears
            read_training_data(path)
        except ValueError as e:  # TrainingError; name the upload, not its temporary path
            raise UserError(str(e).replace(str(path), Path(path).name)) from None
        eng = self.studio.engine(model)
        out = self.root / clean
        existed = out.exists()

        def report(step, total, loss):
            if progress is not None:
                progress((step, total), desc="training" + (f" · loss {loss:.3f}" if loss is not None else ""))

        if progress is not None:
            progress(0.0, desc="preparing the model")
        try:
            summary = train_from_upload(path, clean, max_steps=steps, rank=rank, progress=report,
                                        root=self.root, model=eng.lm)
        except BaseException:
            if not existed:  # nothing half-written: a new adapter that failed leaves no folder
                shutil.rmtree(out, ignore_errors=True)
            raise
        # A retrained adapter must not run with the weights loaded before: drop the old copy.
        aset = adapters_for(eng)
        for n, info in list(aset.adapters.items()):
            if Path(info.path) == Path(summary["path"]):
                aset.unload(n)
        return summary


def wire(ui, studio: Studio, demo: gr.Blocks) -> SteeringHandlers:
    """The tab's own events (the Generate chain is wired in callbacks.wire)."""
    h = SteeringHandlers(studio)
    quick = dict(concurrency_limit=None, show_progress="hidden")
    TABLES = [ui.adapter_table, ui.adapter_mix, ui.expert, ui.anti_expert]
    ui.adapter_refresh.click(h.refresh, [ui.adapter_mix], TABLES, api_name="studio_adapters", **quick)
    ui.steering_tab.select(h.refresh, [ui.adapter_mix], TABLES, api_visibility="private", **quick)
    ui.train_btn.click(h.train, [ui.train_file, ui.train_name, ui.train_steps, ui.train_rank, ui.model,
                                 ui.adapter_mix], [ui.train_status, *TABLES],
                       api_name="studio_train_adapter", concurrency_id="train", concurrency_limit=1,
                       show_progress="full")
    return h
