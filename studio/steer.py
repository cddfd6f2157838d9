"""Steering a generation: adapters, word banks, prompt contrast, experts, discriminators.

Turns what a writer asks for (CLI flags, API keywords, studio panel values) into the two
keyword arguments ``Engine.stream`` takes: ``feed`` (the model and rows of the batched,
mixed forward of pipeline steps 1-2) and ``controllers`` (step 3).  Nothing here runs per
step.

    --adapter DIR[:WEIGHT]      a LoRA adapter mixed in: base + w (adapter − base)  (repeatable)
    --bank FILE[:STRENGTH]      favour the words in FILE (negative strength: avoid them)
    --steer "TEXT"[:STRENGTH]   prompt contrast toward a description (γ, 1 = plain prompting)
    --expert DIR --anti-expert DIR [--alpha A]            DExperts
    --discriminator A.txt,B.txt|FILE.csv|DIR[:STRENGTH]   FUDGE toward A (or the CSV's target)

The request path (studio/request.py, ``Steering.build``) calls ``steering``; the studio panel
also calls ``adapter_table`` and ``train_from_upload``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from models.adapters import AdapterError, AdapterSet, adapter_folder, adapters_for, list_adapters
from models.controllers import (
    Controller,
    DiscriminatorGuidance,
    ExpertAntiExpert,
    PromptContrast,
    SourcePlan,
    WordBank,
)
from models.discriminator import Discriminator

from studio.request import DEFAULT_ALPHA, DEFAULT_BANK_STRENGTH, DEFAULT_DISC_STRENGTH, DEFAULT_STEER_STRENGTH


def parse_weighted(spec: str, default: float, what: str) -> tuple[str, float]:
    """'THING:0.5' -> ('THING', 0.5); a tail that is not a number stays part of THING."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"{what} must not be empty")
    head, sep, tail = spec.rpartition(":")
    if sep and head.strip():
        try:
            value = float(tail)
        except ValueError:
            return spec, default
        if not math.isfinite(value):
            raise ValueError(f"{what} weight must be a finite number (got {tail!r})")
        return head, value
    return spec, default


def _adapter_list(engine, adapter) -> tuple[AdapterSet, list[tuple[str, float]]]:
    """Load what ``adapter`` names; return the set and the (name, weight) pairs to mix.
    ``adapter``: an AdapterSet (its enabled adapters), 'DIR[:W]', (DIR_or_name, W), or a list."""
    aset = adapters_for(engine)
    if isinstance(adapter, AdapterSet):
        return adapter, adapter.active()
    items = adapter if isinstance(adapter, (list, tuple)) and not _is_pair(adapter) else [adapter]
    out = []
    for item in items:
        if _is_pair(item):
            where, weight = item[0], float(item[1])
        else:
            where, weight = parse_weighted(str(item), 1.0, "adapter")
        name = where if where in aset.adapters else aset.load(where).name
        out.append((name, weight))
    return aset, out


def _is_pair(x) -> bool:
    return isinstance(x, tuple) and len(x) == 2 and isinstance(x[1], (int, float))


def bank_of(bank) -> WordBank:
    if isinstance(bank, WordBank):
        return bank
    if isinstance(bank, (list, tuple, set, frozenset)):
        return WordBank(bank, DEFAULT_BANK_STRENGTH)
    path, strength = parse_weighted(str(bank), DEFAULT_BANK_STRENGTH, "bank")
    return WordBank.from_file(path, strength)


def _steer(steer) -> PromptContrast:
    if isinstance(steer, PromptContrast):
        return steer
    text, strength = parse_weighted(str(steer), DEFAULT_STEER_STRENGTH, "steer")
    return PromptContrast(text, strength)


def load_discriminator(engine, spec: str) -> tuple[Discriminator, float]:
    """'A.txt,B.txt[:S]' (toward A), 'FILE.csv[:S]', or a saved discriminator 'DIR[:S]'."""
    where, strength = parse_weighted(spec, DEFAULT_DISC_STRENGTH, "discriminator")
    if "," in where:
        a, b = (s.strip() for s in where.split(",", 1))
        return Discriminator.from_files(engine, a, b), strength
    p = Path(where).expanduser()
    if p.is_dir():
        return Discriminator.load(p), strength
    if p.suffix.lower() == ".csv":
        return Discriminator.from_csv(engine, p), strength
    raise ValueError(f"discriminator '{where}': give TARGET.txt,OTHER.txt, a .csv with text,label, "
                     "or a saved discriminator directory")


def steering(engine, *, adapter=None, bank=None, steer=None, expert=None, discriminator=None,
             controllers=()) -> dict:
    """Keyword arguments for ``Engine.stream``: ``feed`` and ``controllers``.

    ``expert`` is an ExpertAntiExpert or (expert DIR, anti DIR[, alpha]); ``discriminator``
    a DiscriminatorGuidance, a Discriminator, or a spec string (see load_discriminator).
    Controllers keep per-generation state: call it once per generation."""
    aset, mixed = (None, [])
    if adapter is not None:
        aset, mixed = _adapter_list(engine, adapter)
    ctrls: list[Controller] = []
    if isinstance(bank, (list, tuple)) and bank and all(isinstance(b, WordBank) for b in bank):
        ctrls += list(bank)
    elif bank is not None:
        ctrls.append(bank_of(bank))  # a WordBank, 'FILE[:STRENGTH]', or a list of words
    if steer is not None:
        ctrls.append(_steer(steer))
    if expert is not None:
        if not isinstance(expert, ExpertAntiExpert):  # (expert, anti[, alpha]): names or directories
            expert = ExpertAntiExpert(expert[0], expert[1], *(expert[2:3] or (DEFAULT_ALPHA,)))
        ctrls.append(expert)
    if discriminator is not None:
        if isinstance(discriminator, str):
            d, s = load_discriminator(engine, discriminator)
            discriminator = DiscriminatorGuidance(d, s)
        elif isinstance(discriminator, Discriminator):
            discriminator = DiscriminatorGuidance(discriminator, DEFAULT_DISC_STRENGTH)
        ctrls.append(discriminator)
    ctrls += list(controllers or ())
    plan = SourcePlan(adapters=mixed)
    for c in ctrls:
        c.configure(plan, engine)
    if any(r.adapter != "__base__" for r in plan.rows()):
        aset = aset or adapters_for(engine)
    return {"feed": plan.build(engine, aset), "controllers": ctrls}


# ---------------------------------------------------------------------- the studio panel


def adapter_table(root: str | Path | None = None) -> list[dict]:
    """The adapters on disk under ``root`` (default: the studio's adapter folder)."""
    return list_adapters(root)


def adapter_dir_name(name: str) -> str:
    """The folder an adapter called ``name`` is trained into: letters, digits, - and _
    (anything else becomes _); AdapterError when nothing of the name is left."""
    clean = "".join(c if c.isalnum() or c in "-_" else "_" for c in (name or "").strip())
    if not any(c.isalnum() for c in clean):
        raise AdapterError("give the adapter a name (letters, digits, - or _)")
    return clean


def train_from_upload(data_path: str | Path, name: str, *, max_steps: int = 100, rank: int = 8,
                      progress: Callable | None = None, root: str | Path | None = None, **kw) -> dict:
    """Train an adapter named ``name`` from an uploaded file into the studio's adapter
    folder; ``progress(step, total, loss)`` after each step.  Returns the summary."""
    from models.train import train_adapter

    return train_adapter(data_path, adapter_folder(root) / adapter_dir_name(name), max_steps=max_steps, rank=rank, progress=progress,
                         echo=None, bar=False, **kw)
