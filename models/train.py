"""Training LoRA adapters with trl: SFT on text, DPO on preference pairs.

CPU-feasible by construction: short sequences, small batches, LoRA on the attention and
MLP projections, float32 (trl's bf16 default is ~15x slower on CPUs without bf16 units)
and no gradient checkpointing.  Checkpoints go to ``OUT/checkpoints`` so an interrupted
run resumes where it stopped.  The finished adapter is written beside ``OUT`` and moved
in at the end, so a failed run never leaves a half-written adapter where a good one was.

Data (a file or a directory of files):
  .txt / .md        plain text, cut into chunks of about ``chunk_words`` words
  .jsonl            {"text": ...} lines (SFT), {"prompt": ..., "completion": ...} lines
                    (SFT, loss on the completion only) or {"chosen": ..., "rejected": ...
                    [, "prompt": ...]} lines (DPO)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from models.adapters import CONFIG, META, WEIGHTS, AdapterError

TEXT_SUFFIXES = (".txt", ".md")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class TrainingError(AdapterError):
    """Bad training input or settings; the message names the file or the setting."""


@dataclass
class TrainingData:
    kind: str  # "text" (SFT) or "pairs" (DPO)
    records: list[dict]
    files: list[str] = field(default_factory=list)


def chunk_text(text: str, chunk_words: int = 60) -> list[str]:
    """Cut text into pieces of about ``chunk_words`` words, at sentence ends when possible."""
    sentences = re.split(r"(?<=[.!?])\s+|\n\s*\n", text)
    chunks, cur, n = [], [], 0
    for s in sentences:
        s = " ".join(s.split())
        if not s:
            continue
        words = len(s.split())
        if cur and n + words > chunk_words:
            chunks.append(" ".join(cur))
            cur, n = [], 0
        cur.append(s)
        n += words
    if cur:
        chunks.append(" ".join(cur))
    return chunks


def read_training_data(path: str | Path, chunk_words: int = 60) -> TrainingData:
    """Read a file or a directory of files into SFT texts or DPO pairs."""
    p = Path(path).expanduser()
    if not p.exists():
        raise TrainingError(f"no training data at '{path}'")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix in TEXT_SUFFIXES + (".jsonl",)) \
        if p.is_dir() else [p]
    if not files:
        raise TrainingError(f"no training files (.txt, .md, .jsonl) in directory '{path}'")
    texts: list[dict] = []  # {"text"} or {"prompt", "completion"}
    pairs: list[dict] = []
    for f in files:
        try:
            raw = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TrainingError(f"training file '{f}' is not UTF-8 text") from None
        if not raw.strip():
            raise TrainingError(f"training file '{f}' is empty")
        if f.suffix == ".jsonl":
            _read_jsonl(f, raw, texts, pairs)
        elif f.suffix in TEXT_SUFFIXES or p.is_file():
            # Pieces of one longer text: no end-of-text after each (the model would learn
            # to stop every ~chunk_words words).
            texts.extend({"text": t, "eos": False} for t in chunk_text(raw, chunk_words))
    if texts and pairs:
        raise TrainingError(f"'{path}' mixes plain text and preference pairs; train them separately")
    if not texts and not pairs:
        raise TrainingError(f"'{path}' holds no training examples")
    if len({"prompt" in r for r in texts}) > 1:
        raise TrainingError(f"'{path}' mixes plain text and prompt/completion examples; train them separately")
    kind = "pairs" if pairs else "text"
    return TrainingData(kind, pairs or texts, [str(f) for f in files])


def _read_jsonl(f: Path, raw: str, texts: list, pairs: list) -> None:
    for i, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TrainingError(f"{f}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise TrainingError(f"{f}:{i}: each line must be a JSON object")
        if "chosen" in obj or "rejected" in obj:
            if not (isinstance(obj.get("chosen"), str) and isinstance(obj.get("rejected"), str)):
                raise TrainingError(f"{f}:{i}: a preference pair needs 'chosen' and 'rejected' strings")
            pair = {"chosen": obj["chosen"], "rejected": obj["rejected"]}
            if isinstance(obj.get("prompt"), str):
                pair["prompt"] = obj["prompt"]
            pairs.append(pair)
        elif isinstance(obj.get("text"), str) and obj["text"].strip():
            texts.append({"text": obj["text"]})
        elif isinstance(obj.get("prompt"), str) and isinstance(obj.get("completion"), str):
            texts.append({"prompt": obj["prompt"], "completion": obj["completion"]})  # loss on the completion
        else:
            raise TrainingError(f"{f}:{i}: expected 'text', 'prompt'/'completion' or 'chosen'/'rejected' fields")
    if pairs and any("prompt" in p for p in pairs) and not all("prompt" in p for p in pairs):
        raise TrainingError(f"{f}: give 'prompt' on every preference pair or on none")


# ---------------------------------------------------------------------- the model


def load_trainable(model=None):
    """(model, tokenizer, base name) for training: a fresh float32 copy, never the
    instance the engine generates with (peft injects layers into what it trains)."""
    import copy

    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from models.loading import EMBEDDED_NAME, LoadedModel, embedded_path, is_embedded

    if isinstance(model, LoadedModel):
        m = copy.deepcopy(model.model).float().train()
        return m, model.tokenizer, model.name
    if model is None or is_embedded(model):
        path, name = str(embedded_path()[0]), EMBEDDED_NAME
    else:
        path, name = str(Path(model).expanduser()), Path(model).name
        if not (Path(path) / "config.json").is_file():
            raise TrainingError(f"'{model}' is not a local model directory (no config.json)")
    config = AutoConfig.from_pretrained(path)
    # The embedded copy was converted from GGUF and still says so; its weights are plain
    # float32, and Trainer refuses any model that claims a quantization.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    m = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=torch.float32)
    return m, AutoTokenizer.from_pretrained(path), name


# ---------------------------------------------------------------------- progress


def _callback(total: int, progress: Callable | None, echo: Callable | None, bar: bool):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """A progress bar, a loss line every logging step, and the caller's callback."""

        def __init__(self):
            self.bar = None
            self.last_loss = None

        def on_train_begin(self, args, state, control, **kw):
            if bar:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, initial=state.global_step, desc="training", unit="step")

        def on_step_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)
            if progress:
                progress(state.global_step, total, self.last_loss)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.last_loss = float(logs["loss"])
                line = f"step {state.global_step}/{total}  loss {self.last_loss:.4f}"
                if self.bar is not None:
                    self.bar.write(line)
                elif echo:
                    echo(line)

        def on_train_end(self, args, state, control, **kw):
            if self.bar is not None:
                self.bar.close()

    return Progress()


# ---------------------------------------------------------------------- training


def train_adapter(data, out, *, model=None, max_steps: int = 200, rank: int = 8,
                  method: str = "auto", learning_rate: float | None = None, batch_size: int = 2,
                  max_length: int = 96, save_steps: int = 50, beta: float = 0.1, seed: int = 0,
                  max_examples: int | None = None, chunk_words: int = 60,
                  progress: Callable | None = None, echo: Callable | None = print,
                  bar: bool = True) -> dict:
    """Train a LoRA adapter into directory ``out`` and return its summary.

    ``data`` is a path (see the module docstring) or a TrainingData.  ``method`` is sft,
    dpo or auto (dpo for preference pairs).  ``progress(step, total, loss)`` is called
    after every step (for the studio's progress bar).  A run that finds checkpoints in
    ``out/checkpoints`` resumes from the latest."""
    from peft import LoraConfig

    for name, value, low in (("max_steps", max_steps, 1), ("rank", rank, 1), ("batch_size", batch_size, 1),
                             ("max_length", max_length, 8), ("save_steps", save_steps, 1)):
        if not isinstance(value, int) or value < low:
            raise TrainingError(f"{name} must be an integer >= {low} (got {value!r})")
    td = data if isinstance(data, TrainingData) else read_training_data(data, chunk_words)
    if method == "auto":
        method = "dpo" if td.kind == "pairs" else "sft"
    if method not in ("sft", "dpo"):
        raise TrainingError(f"method must be sft, dpo or auto (got {method!r})")
    if (method == "dpo") != (td.kind == "pairs"):
        need = "preference pairs ('chosen'/'rejected' JSONL)" if method == "dpo" else "text"
        raise TrainingError(f"{method} training needs {need}; the data holds {td.kind}")
    records = td.records[:max_examples] if max_examples else td.records
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise TrainingError(f"--out '{out}' is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    m, tok, base_name = load_trainable(model)
    run = {"base_model": base_name, "method": method, "rank": rank, "batch_size": batch_size,
           "max_length": max_length, "data": _fingerprint(records)}
    resume = _resume_point(ckpt_dir, run)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    lr = learning_rate or (2e-4 if method == "sft" else 5e-5)
    common = dict(output_dir=str(ckpt_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
                  learning_rate=lr, logging_steps=max(1, min(10, max_steps // 10)), save_steps=save_steps,
                  save_total_limit=2, bf16=False, fp16=False, activation_checkpointing=False,
                  max_length=max_length, report_to=[], disable_tqdm=True, seed=seed, data_seed=seed,
                  use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=False)
    lora = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=TARGETS,
                      task_type="CAUSAL_LM")
    cb = _callback(max_steps, progress, echo, bar)
    _quiet_datasets()
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # transformers' deprecation notes, raised inside trl/peft
        warnings.simplefilter("ignore", FutureWarning)
        trainer = _make_trainer(method, common, beta, records, m, tok, lora, cb)
        if echo:
            echo(f"{method.upper()} on {base_name}: {len(records)} examples, {max_steps} steps, "
                 f"batch {batch_size}, max length {max_length}, LoRA rank {rank}, lr {lr:g}"
                 + (f"; resuming from {resume.name}" if resume else ""))
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    meta = {
        "base_model": base_name, "method": method, "steps": trainer.state.global_step,
        "rank": rank, "learning_rate": lr, "batch_size": batch_size, "max_length": max_length,
        "examples": len(records), "data": td.files, "final_loss": losses[-1] if losses else None,
        "first_loss": losses[0] if losses else None, "train_loss": float(result.training_loss),
        "seconds": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    _save_final(trainer.model, out, base_name, meta)
    return dict(meta, path=str(out.resolve()))


def pretokenize(records: list[dict], tok, max_length: int) -> list[dict]:
    """SFT records as input_ids + labels: an end-of-text token only where the example
    really ends (``eos``, default True), and no loss on a prompt (labels -100)."""
    out = []
    for r in records:
        end = [tok.eos_token_id] if r.get("eos", True) and tok.eos_token_id is not None else []
        if "text" in r:
            ids = tok(r["text"], add_special_tokens=False)["input_ids"] + end
            labels = list(ids)
        else:
            p = tok(r["prompt"], add_special_tokens=False)["input_ids"]
            c = tok(r["completion"], add_special_tokens=False)["input_ids"] + end
            ids, labels = p + c, [-100] * len(p) + c
        if any(x != -100 for x in labels[1:max_length]):
            out.append({"input_ids": ids[:max_length], "labels": labels[:max_length]})
    if not out:
        raise TrainingError("no example has anything to learn within max_length tokens")
    return out


def _make_trainer(method, common, beta, records, model, tok, lora, callback):
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    if method == "sft":
        data = Dataset.from_list(pretokenize(records, tok, common["max_length"]))
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=model, args=SFTConfig(**common, dataset_text_field="text"),
                             train_dataset=data, processing_class=tok, peft_config=lora, callbacks=[callback])
    else:
        from trl import DPOConfig, DPOTrainer

        data = Dataset.from_list(records)
        trainer = DPOTrainer(model=model, args=DPOConfig(**common, beta=beta), train_dataset=data,
                             processing_class=tok, peft_config=lora, callbacks=[callback])
    for default in (PrinterCallback, ProgressCallback):  # ours prints the loss and the bar
        trainer.remove_callback(default)
    return trainer


def _fingerprint(records: list[dict]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()[:16]


def _resume_point(ckpt_dir: Path, run: dict) -> Path | None:
    """The checkpoint to resume from, if it belongs to this same run (base model, data,
    settings; max_steps may grow).  A different run never silently continues another's."""
    stamp = ckpt_dir / "perec_run.json"
    latest = _latest_checkpoint(ckpt_dir)
    if latest is not None and stamp.is_file():
        try:
            before = json.loads(stamp.read_text())
        except json.JSONDecodeError:
            before = None
        if before != run:
            changed = sorted(k for k in run if not isinstance(before, dict) or before.get(k) != run[k])
            raise TrainingError(
                f"'{ckpt_dir.parent}' holds checkpoints of a different run (changed: "
                f"{', '.join(changed) or 'unknown'}); use another --out or delete {ckpt_dir}")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(run, indent=2))
    return latest


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    if not ckpt_dir.is_dir():
        return None
    cks = [d for d in ckpt_dir.glob("checkpoint-*") if d.is_dir() and d.name.split("-")[-1].isdigit()
           and (d / "trainer_state.json").is_file()]
    return max(cks, key=lambda d: int(d.name.split("-")[-1])) if cks else None


def _save_final(peft_model, out: Path, base_name: str, meta: dict) -> None:
    """Write the adapter beside ``out`` and move its files in (safetensors only)."""
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
    try:
        peft_model.save_pretrained(str(tmp), safe_serialization=True)
        cfg = json.loads((tmp / CONFIG).read_text())
        cfg["base_model_name_or_path"] = base_name  # not the cache path it was read from
        (tmp / CONFIG).write_text(json.dumps(cfg, indent=2))
        (tmp / META).write_text(json.dumps(meta, indent=2))
        for name in (WEIGHTS, CONFIG, META):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _quiet_datasets() -> None:
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
