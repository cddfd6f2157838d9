"""Steering a generation: adapters, word banks, prompt contrast, experts, discriminators.

Turns what a writer asks for (CLI flags, API keywords, studio panel values) into the two
keyword arguments ``Engine.stream`` takes: ``source`` (the batched, mixed forward of
pipeline steps 1-2) and ``controllers`` (step 3).  Nothing here runs per step.

    --adapter DIR[:WEIGHT]      a LoRA adapter mixed in: base + w (adapter − base)  (repeatable)
    --bank FILE[:STRENGTH]      favour the words in FILE (negative strength: avoid them)
    --steer "TEXT"[:STRENGTH]   prompt contrast toward a description (γ, 1 = plain prompting)
    --expert DIR --anti-expert DIR [--alpha A]            DExperts
    --discriminator A.txt,B.txt|FILE.csv|DIR[:STRENGTH]   FUDGE toward A (or the CSV's target)

The studio panel calls ``adapter_table``, ``train_from_upload`` and ``steering`` directly.
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

DEFAULT_BANK_STRENGTH = 3.0
DEFAULT_STEER_STRENGTH = 1.5
DEFAULT_ALPHA = 2.0
DEFAULT_DISC_STRENGTH = 2.0


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


def _bank(bank) -> WordBank:
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
    """Keyword arguments for ``Engine.stream``: ``source`` and ``controllers``.

    ``expert`` is an ExpertAntiExpert or (expert DIR, anti DIR[, alpha]); ``discriminator``
    a DiscriminatorGuidance, a Discriminator, or a spec string (see load_discriminator).
    Call it once per generation: the source it builds holds that generation's cache."""
    aset, mixed = (None, [])
    if adapter is not None:
        aset, mixed = _adapter_list(engine, adapter)
    ctrls: list[Controller] = []
    if isinstance(bank, (list, tuple)) and bank and all(isinstance(b, WordBank) for b in bank):
        ctrls += list(bank)
    elif bank is not None:
        ctrls.append(_bank(bank))  # a WordBank, 'FILE[:STRENGTH]', or a list of words
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
    return {"source": plan.build(engine, aset), "controllers": ctrls}


# ---------------------------------------------------------------------- the CLI


def add_arguments(p) -> None:
    g = p.add_argument_group("steering (adapters and controllers)")
    g.add_argument("--adapter", action="append", default=[], metavar="DIR[:WEIGHT]",
                   help="mix in a LoRA adapter: base + WEIGHT*(adapter - base) (repeatable; weight 1)")
    g.add_argument("--bank", action="append", default=[], metavar="FILE[:STRENGTH]",
                   help=f"favour the words listed in FILE (strength {DEFAULT_BANK_STRENGTH}; negative avoids)")
    g.add_argument("--steer", default=None, metavar='"TEXT"[:STRENGTH]',
                   help=f"prompt contrast toward a description (strength {DEFAULT_STEER_STRENGTH})")
    g.add_argument("--expert", default=None, metavar="DIR", help="DExperts: the expert adapter")
    g.add_argument("--anti-expert", default=None, metavar="DIR", help="DExperts: the anti-expert adapter")
    g.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="DExperts strength")
    g.add_argument("--discriminator", default=None, metavar="A.txt,B.txt|FILE.csv|DIR[:STRENGTH]",
                   help="FUDGE guidance by a classifier trained now on the examples (toward A)")


def stream_hook(args, engine) -> dict:
    """studio.cli STREAM_HOOKS entry: the steering keyword arguments for this request."""
    if bool(args.expert) != bool(args.anti_expert):
        raise ValueError("--expert and --anti-expert go together")
    wanted = args.adapter or args.bank or args.steer or args.expert or args.discriminator
    if not wanted:
        return {}
    return steering(engine, adapter=args.adapter or None, bank=[_bank(b) for b in args.bank] or None,
                    steer=args.steer, discriminator=args.discriminator,
                    expert=(args.expert, args.anti_expert, args.alpha) if args.expert else None)


def _register() -> None:
    from studio import cli

    hooks = cli.ARGUMENT_HOOKS.setdefault("generate", [])
    if add_arguments not in hooks:
        hooks.append(add_arguments)
    if stream_hook not in cli.STREAM_HOOKS:
        cli.STREAM_HOOKS.append(stream_hook)


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


_register()
