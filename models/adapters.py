"""peft LoRA adapters: find, validate, load several at once, weight, mix per step.

An ``AdapterSet`` belongs to one loaded model.  It wraps a *parameter-sharing copy* of
the model with peft (the module tree is copied, the weight tensors are not), so loading
an adapter never changes what the plain engine computes and costs no second model in
memory.  Adapters are run together in one batch through peft's ``adapter_names``
(models/sources.py) and mixed as ``base + Σ wᵢ (adapterᵢ − base)``.

Only safetensors weights are loaded: a pickled ``.bin``/``.pt`` can run code on load.
Everything about an adapter directory is checked before peft touches the model, so a
bad directory leaves the adapters already loaded as they were.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from models.sources import BASE, Row

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
META = "perec_adapter.json"  # written by our trainer: base model, steps, loss, data
PICKLED = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class AdapterError(ValueError):
    """An adapter that cannot be used; the message names the directory and the problem."""


@dataclass
class AdapterInfo:
    name: str
    path: str
    rank: int
    base_model: str  # as recorded by the adapter (may be empty)
    target_modules: list[str]
    weight: float = 1.0
    enabled: bool = True
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def default_root() -> Path:
    """Where the studio keeps adapters it trains (``$PEREC_CACHE/adapters``)."""
    from models.loading import cache_dir

    return cache_dir() / "adapters"


def adapter_folder(root: str | Path | None = None) -> Path:
    """``root`` as a folder of adapters (None: the default one)."""
    return Path(root).expanduser() if root else default_root()


def inspect_adapter(path: str | Path) -> tuple[AdapterInfo, dict[str, tuple[int, ...]]]:
    """Validate an adapter directory without a model: (info, tensor shapes by name)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise AdapterError(f"no adapter at '{path}': the path does not exist")
    if not p.is_dir():
        raise AdapterError(f"'{path}' is not an adapter directory (it is a file)")
    weights = p / WEIGHTS
    if not weights.is_file():
        pickled = sorted(f.name for f in p.iterdir() if f.suffix in PICKLED)
        if pickled:
            raise AdapterError(
                f"adapter '{path}' has pickled weights ({', '.join(pickled)}); Perec loads only "
                f"safetensors, because unpickling can run arbitrary code. Convert it to {WEIGHTS} "
                "with a tool you trust.")
        raise AdapterError(f"'{path}' is not an adapter directory: no {WEIGHTS}")
    try:
        cfg = json.loads((p / CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterError(f"adapter '{path}' has no {CONFIG}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AdapterError(f"adapter '{path}': {CONFIG} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA":
        kind = cfg.get("peft_type") if isinstance(cfg, dict) else type(cfg).__name__
        raise AdapterError(f"adapter '{path}' is not a LoRA adapter (peft_type {kind!r})")
    try:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise AdapterError(f"adapter '{path}': {WEIGHTS} is corrupt or unreadable ({e})") from None
    if not any(".lora_A." in k for k in shapes):
        raise AdapterError(f"adapter '{path}': {WEIGHTS} holds no LoRA weights")
    meta = {}
    if (p / META).is_file():
        try:
            meta = json.loads((p / META).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
    targets = cfg.get("target_modules") or []
    info = AdapterInfo(
        name=p.name, path=str(p.resolve()), rank=int(cfg.get("r", 0)),
        base_model=str(meta.get("base_model") or cfg.get("base_model_name_or_path") or ""),
        target_modules=sorted(targets) if isinstance(targets, list) else [str(targets)], meta=meta)
    return info, shapes


def check_compatible(info: AdapterInfo, shapes: dict, model, model_name: str) -> None:
    """Raise AdapterError if the adapter was made for another base model."""
    recorded = info.meta.get("base_model")
    if recorded and recorded != model_name:
        raise AdapterError(f"adapter '{info.path}' was trained on base model '{recorded}', "
                           f"but the loaded model is '{model_name}'")
    for key, shape in shapes.items():
        for part, dim, attr in ((".lora_A.", 1, "in_features"), (".lora_B.", 0, "out_features")):
            if part not in key:
                continue
            module_path = key.split(part)[0].removeprefix("base_model.model.")
            try:
                module = model.get_submodule(module_path)
            except AttributeError:
                raise AdapterError(
                    f"adapter '{info.path}' does not fit model '{model_name}': it adapts "
                    f"'{module_path}', which this model lacks (a different base model?)") from None
            want = getattr(module, attr, None)
            if want is not None and len(shape) == 2 and shape[dim] != want:
                raise AdapterError(
                    f"adapter '{info.path}' does not fit model '{model_name}': '{module_path}' has "
                    f"{attr}={want}, the adapter expects {shape[dim]} (a different base model?)")


def list_adapters(root: str | Path | None = None) -> list[dict]:
    """Every adapter directory directly under ``root`` (for the studio's table), with
    its problem in ``error`` when it cannot be loaded."""
    r = adapter_folder(root)
    rows = []
    if not r.is_dir():
        return rows
    for d in sorted(p for p in r.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            info, _ = inspect_adapter(d)
            m = info.meta
            rows.append({"name": info.name, "path": info.path, "rank": info.rank,
                         "base_model": info.base_model, "method": m.get("method", ""),
                         "steps": m.get("steps"), "loss": m.get("final_loss"),
                         "created": m.get("created", ""), "error": ""})
        except AdapterError as e:
            rows.append({"name": d.name, "path": str(d), "rank": None, "base_model": "",
                         "method": "", "steps": None, "loss": None, "created": "", "error": str(e)})
    return rows


def shared_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the module tree that shares every parameter and buffer tensor."""
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return copy.deepcopy(model, memo)


class AdapterSet:
    """The adapters loaded for one model: load / unload / enable / disable / re-weight
    between generations without reloading anything."""

    def __init__(self, model: torch.nn.Module, model_name: str):
        self.base = model
        self.model_name = model_name
        self.peft = None  # a PeftModel over shared_copy(model), built on first load
        self.adapters: dict[str, AdapterInfo] = {}
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ loading

    def load(self, path: str | Path, weight: float = 1.0, name: str | None = None) -> AdapterInfo:
        """Load (or find already loaded) the adapter at ``path``; returns its info."""
        _check_weight(weight)
        info, shapes = inspect_adapter(path)
        with self._lock:
            for a in self.adapters.values():
                if a.path == info.path:
                    return a
            check_compatible(info, shapes, self.base, self.model_name)
            info.name = self._unique(name or info.name)
            info.weight = float(weight)
            self._load_into_peft(info)
            self.adapters[info.name] = info
            return info

    def _unique(self, name: str) -> str:
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "adapter"
        if name == BASE:
            name = "adapter"
        out, i = name, 2
        while out in self.adapters:
            out, i = f"{name}_{i}", i + 1
        return out

    def _load_into_peft(self, info: AdapterInfo) -> None:
        import warnings

        from peft import PeftModel

        try:
            with warnings.catch_warnings():  # transformers' deprecation notes, seen by peft
                warnings.simplefilter("ignore", FutureWarning)
                if self.peft is None:
                    self.peft = PeftModel.from_pretrained(shared_copy(self.base), info.path,
                                                          adapter_name=info.name, is_trainable=False)
                else:
                    self.peft.load_adapter(info.path, adapter_name=info.name, is_trainable=False)
            self.peft.eval()
        except Exception as e:  # peft/torch raise many kinds; leave the set as it was
            if self.peft is not None and info.name in getattr(self.peft, "peft_config", {}):
                self.peft.delete_adapter(info.name)
            if self.peft is not None and not self.peft.peft_config:
                self.peft = None
            raise AdapterError(f"adapter '{info.path}' could not be loaded: {e}") from None

    def unload(self, name: str) -> None:
        with self._lock:
            self._get(name)
            del self.adapters[name]
            if not self.adapters:
                self.peft = None  # drop the copy; the base model is untouched
            else:
                self.peft.delete_adapter(name)

    # ------------------------------------------------------------------ state

    def _get(self, name: str) -> AdapterInfo:
        try:
            return self.adapters[name]
        except KeyError:
            have = ", ".join(self.adapters) or "none"
            raise AdapterError(f"no adapter named '{name}' is loaded (loaded: {have})") from None

    def set_weight(self, name: str, weight: float) -> None:
        _check_weight(weight)
        self._get(name).weight = float(weight)

    def enable(self, name: str) -> None:
        self._get(name).enabled = True

    def disable(self, name: str) -> None:
        self._get(name).enabled = False

    def active(self) -> list[tuple[str, float]]:
        """(name, weight) of every enabled adapter."""
        return [(a.name, a.weight) for a in self.adapters.values() if a.enabled]

    def info(self) -> list[dict]:
        return [a.to_dict() for a in self.adapters.values()]

    def model_for(self, names) -> torch.nn.Module:
        """The module to run for rows using ``names`` (the peft copy if any adapter)."""
        names = [n for n in names if n != BASE]
        for n in names:
            self._get(n)
        return self.peft if names else self.base


def mix_rows(adapters: list[tuple[str, float]], prefix: tuple[int, ...] = (),
             scale: float = 1.0) -> list[Row]:
    """Rows for ``base + Σ wᵢ (adapterᵢ − base)``, all scaled by ``scale``.  Rows whose
    weight comes to 0 are left out (a single adapter at weight 1 is just that adapter)."""
    base_w = 1.0 - sum(w for _, w in adapters)
    rows = [Row(BASE, prefix, scale * base_w)] + [Row(n, prefix, scale * w) for n, w in adapters]
    return [r for r in rows if r.weight != 0]


def _check_weight(weight) -> None:
    if not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise AdapterError(f"adapter weight must be a finite number (got {weight!r})")


_SETS: "weakref.WeakKeyDictionary[torch.nn.Module, AdapterSet]" = weakref.WeakKeyDictionary()
_sets_lock = threading.Lock()


def adapters_for(engine) -> AdapterSet:
    """The AdapterSet of an engine's model (one per model, created on first use)."""
    with _sets_lock:
        s = _SETS.get(engine.model)
        if s is None:
            s = _SETS[engine.model] = AdapterSet(engine.model, engine.name)
        return s


class AdapterView(torch.nn.Module):
    """The model as seen through one adapter (for scoring): forwards every row of the
    batch with that adapter."""

    def __init__(self, peft_model, name: str):
        super().__init__()
        self.peft_model = peft_model
        self.name = name

    def forward(self, input_ids=None, **kw):
        return self.peft_model(input_ids=input_ids, adapter_names=[self.name] * input_ids.shape[0], **kw)


class EngineView:
    """What studio.scoring needs from an engine (model, tokenizer, vocab, device, name),
    with the model replaced by one adapter's view."""

    def __init__(self, engine, adapter_name: str):
        s = adapters_for(engine)
        self.model = AdapterView(s.model_for([adapter_name]), adapter_name)
        self.tokenizer, self.vocab, self.device = engine.tokenizer, engine.vocab, engine.device
        self.name = f"{engine.name}+{adapter_name}"
