"""Perec's rules inside vLLM: a V1 logits processor, and batches of requests run through it.

    from studio.bridges.vllm import run_batch
    if __name__ == "__main__":            # vLLM spawns its engine process
        for r in run_batch([{"id": "1", "prompt": "The sea", "constraints": "lipogram:e"}]):
            print(r["id"], r["text"])

Each request's rules travel in ``SamplingParams.extra_args["perec"]`` (a spec string, the
text they see as already written, a form's given lines); ``PerecLogitsProcessor``, loaded
into vLLM with ``LLM(..., logits_processors=[PROCESSOR])``, keeps one mask set per request
(studio/bridges/rows.py) and masks that request's logits row every step.  vLLM never
un-samples a token, so rules that can reach a dead end (nothing allowed) and get out of it
in our engine by backing off are refused up front (``refusal``), naming them; a dead end
in what does run ends that request alone, trimmed, with a message
(studio/bridges/outcome.py).

Needs the vLLM environment (``make vllm``); the processor's core, the refusal rules and
the request preparation import without vLLM, so the default test environment tests them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from constraints.base import CharConstraint, Constraint, WordConstraint
from constraints.formspec import FormConstraint
from constraints.letters import RequiredChars

from studio.bridges.outcome import replay
from studio.bridges.rows import RowSpec, RuleRows
from studio.decode.engine import encode_prompt
from studio.decode.generation import Result
from studio.decode.maskset import MaskSet, compile_masks
from studio.decode.settings import Settings
from studio.decode.vocab import vocab_index
from studio.request import Request, form_of
from studio.request import prepare as prepare_request

try:  # the adapter subclasses vLLM's base where vLLM is installed; the core never needs it
    from vllm.v1.sample.logits_processor import LogitsProcessor as _VllmLogitsProcessor
except ImportError:
    _VllmLogitsProcessor = object

PROCESSOR = "studio.bridges.vllm:PerecLogitsProcessor"  # what LLM(logits_processors=...) takes
EXTRA_KEY = "perec"  # SamplingParams.extra_args[EXTRA_KEY] carries a request's rules


# ---------------------------------------------------------------- which rules run here


def refusal(constraint: Constraint | None) -> str | None:
    """Why ``constraint`` cannot run inside vLLM (None: it can), naming the rules.

    vLLM never un-samples a token, so a rule set runs here only if no state it can reach
    leaves nothing allowed (bench/results/backoff-need-cpu.md measures the rest):

    - character rules (banned letters or strings, case, required letters, pangrams): a
      token passes by its own characters and EOS stays open once they are met, while
      required letters are forced in time;
    - word rules on every word, alone or ANDed together (they compile into one word set,
      syllables:1 & starts-with:s included): a token is allowed only if the word in
      progress stays a prefix of an allowed word, and every prefix can be finished a
      letter at a time, then ended by a space.  The one exception is the budget's last
      token, which must finish the word: where no single token does, the text is trimmed
      to its last whole word, with a message;
    - a form alone: its plan offers only words that still fit the line's syllables, metre
      and rhyme (studio/masks/forms.py); measured, 0 dead ends in 64 haiku and 64
      limericks with back-off off.

    Anything that mixes these (a word rule under a lipogram: ' cont' is a prefix of
    one-syllable words, all of them with an e; 13 of 64 texts met a dead end), must-use
    words, rhopalism, title case and scoped rules can reach such a state; our engine
    backs off out of it."""
    if constraint is None:
        return None
    leaves = constraint.leaves()
    chars = [c for c in leaves if isinstance(c, (CharConstraint, RequiredChars))]
    if len(chars) == len(leaves):
        return None
    if not chars and all(_one_word_set(c) for c in leaves):
        return None
    if len(leaves) == 1 and isinstance(leaves[0], FormConstraint):
        return None
    # Name the rules that cannot run here; where rules that run alone meet, all of them.
    others = [c for c in leaves if c not in chars and not _one_word_set(c)
              and not isinstance(c, FormConstraint)]
    names = " & ".join(c.spec() for c in others or leaves)
    return f"{names} needs Perec's engine (back-off): use --backend perec"


def _one_word_set(c: Constraint) -> bool:
    """A word rule that joins the one set every word is judged by (studio/masks/words.py)."""
    return isinstance(c, WordConstraint) and getattr(c, "scope", "every") == "every" \
        and c.spec() != "title-case"


# ---------------------------------------------------------------- requests


@dataclass
class Prepared:
    """One request, ready for vLLM: the prompt's tokens, its sampling parameters (as
    keyword arguments), and what is needed to tell its result afterwards."""

    id: str
    prompt: str  # as the writer gave it (the result's ``prompt``)
    mode: str
    prompt_ids: list[int]
    context: str
    drop_space: bool
    constraint: Constraint | None
    masks: MaskSet  # replays the request's tokens when it is done
    settings: Settings
    params: dict = field(default_factory=dict)


def prepare(request: dict | Request, tokenizer, model_name: str = "") -> Prepared:
    """Check and prepare one request (a dict as ``perec batch`` reads it, or a Request);
    bad input raises ValueError (SpecError, ImpossibleConstraint, FormError, PromptError
    ...) naming the problem.  It goes through the same ``prepare`` as our engine's
    requests (studio/request.py): the same validation, poem start and budget."""
    req = request if isinstance(request, Request) else Request.from_dict(request)
    if req.steering is not None and not req.steering.is_off():
        raise ValueError("steering (adapters, banks, controllers) needs Perec's engine: use --backend perec")
    if req.variants > 1 or (req.search or 1) > 1:
        raise ValueError("variants and search widths need Perec's engine: use --backend perec")
    prepared = prepare_request(req)
    prompt, mode, constraint, text, s = req.prompt, req.mode, prepared.constraint, prepared.prompt, prepared.settings
    why = refusal(constraint)
    if why:
        raise ValueError(why)
    vocab = vocab_index(tokenizer)
    masks = compile_masks(constraint, vocab)  # refuses impossible rule sets now, not in vLLM
    ids, context, drop_space = encode_prompt(tokenizer, text, mode, name=model_name or "this model")
    params = dict(max_tokens=s.max_new_tokens, temperature=0.0 if s.greedy else s.temperature,
                  top_k=s.top_k, top_p=s.top_p, repetition_penalty=s.repetition_penalty,
                  seed=s.seed, stop_token_ids=list(vocab.eos_ids), detokenize=False)
    if constraint is None:
        # vLLM's own min_tokens and stop strings serve; stop strings need its detokenizer.
        params.update(min_tokens=s.min_new_tokens)
        if s.stop:
            params.update(stop=list(s.stop), detokenize=True)
    else:
        # EOS before min_new_tokens and stop strings are the rules' business here: EOS only
        # where every rule may end, a stop string only where they are done (as in our loop).
        given = list(getattr(form_of(constraint), "given", ()) or ())
        spec = RowSpec(constraint.spec(), context, s.min_new_tokens, tuple(given))
        params.update(extra_args={EXTRA_KEY: spec.to_args()})
    return Prepared("" if req.id is None else str(req.id), prompt, mode, ids, context, drop_space,
                    constraint, masks, s, params)


def result(p: Prepared, token_ids: list[int], ended: str, model: str,
           seconds: float, first_token: float) -> dict:
    """The result dict of one finished request: ``perec generate --json``'s fields plus id."""
    out = replay(p.masks, p.context, token_ids, ended=ended, max_tokens=p.settings.max_new_tokens,
                 min_tokens=p.settings.min_new_tokens, drop_space=p.drop_space,
                 stop=tuple(p.settings.stop))
    r = Result(text=out.text, prompt=p.prompt, tokens=len(out.token_ids), seconds=seconds,
               model=model, constraints=p.constraint.spec() if p.constraint is not None else "",
               seed=p.settings.seed, mode=p.mode, stop_reason=out.stop_reason, message=out.message,
               first_token_seconds=first_token, settings=p.settings.to_dict(),
               token_ids=out.token_ids)
    return {"id": p.id, **r.to_dict()}


# ---------------------------------------------------------------- the logits processor


class PerecLogitsProcessor(_VllmLogitsProcessor):
    """vLLM's (V1 model runner) logits processor interface over ``RuleRows``."""

    def __init__(self, vllm_config, device, is_pin_memory: bool = False):
        mc = vllm_config.model_config
        self.rows = RuleRows(_tokenizer(mc.tokenizer), mc.get_vocab_size(), device)

    @classmethod
    def for_tokenizer(cls, tokenizer, width: int, device="cpu") -> "PerecLogitsProcessor":
        """The processor without a vLLM config (tests, or driving it by hand)."""
        self = cls.__new__(cls)
        self.rows = RuleRows(tokenizer, width, device)
        return self

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        args = (sampling_params.extra_args or {}).get(EXTRA_KEY)
        if args is None:
            return
        spec = RowSpec.from_args(args)
        why = refusal(spec.constraint()) if spec is not None else None
        if why:
            raise ValueError(why)

    def is_argmax_invariant(self) -> bool:
        return False  # it masks tokens: greedy decoding changes too

    def update_state(self, batch_update) -> None:
        """vLLM's batch changes, in its order: removed, added, moved."""
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.rows.remove(index)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            args = (params.extra_args or {}).get(EXTRA_KEY) if params is not None else None
            spec = RowSpec.from_args(args) if args is not None else None
            self.rows.add(index, spec, output_ids, params.max_tokens if params is not None else 0)
        for a, b, direction in batch_update.moved:
            if direction.name == "SWAP":
                self.rows.swap(a, b)
            else:
                self.rows.move(a, b)

    def apply(self, logits):
        return self.rows.apply(logits)


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    """The model's own tokenizer (transformers'), loaded once per process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=False)


# ---------------------------------------------------------------- the model folder


def vllm_model_dir(model_dir: str | os.PathLike | None = None) -> Path:
    """A folder vLLM can load: ``model_dir`` itself, or (the embedded default, or any
    folder whose config still names the GGUF file it was converted from) a sibling copy
    whose config.json drops ``quantization_config`` (the weights are already float32;
    vLLM would look for the GGUF file) and links the other files.  The source folder is
    left as it is: our own loader keeps using it."""
    from models.loading import cache_dir, embedded_path

    src = Path(model_dir).expanduser() if model_dir else embedded_path()[0]
    config = json.loads((src / "config.json").read_text())
    if (config.get("quantization_config") or {}).get("quant_method") != "gguf":
        return src
    config.pop("quantization_config")
    dst = (cache_dir() if not model_dir else src.parent) / f"{src.name}-vllm"
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        link = dst / f.name
        if f.name != "config.json" and not link.exists():
            link.symlink_to(f.resolve())
    text = json.dumps(config, indent=2)
    if not (dst / "config.json").is_file() or (dst / "config.json").read_text() != text:
        (dst / "config.json").write_text(text)
    return dst


def model_name(folder: str) -> str:
    """The name results carry: the embedded model's own name for its vLLM copy, as our
    engine reports it; else the folder's name."""
    from models.loading import EMBEDDED_NAME, cache_dir, embedded_path

    path = Path(folder)
    if path.parent == cache_dir() and path.name == f"{embedded_path()[0].name}-vllm":
        return EMBEDDED_NAME
    return path.name


# ---------------------------------------------------------------- batches


def make_llm(model_dir=None, *, max_model_len: int = 2048, kv_cache_gib: float = 1.0,
             dtype: str = "float32", **kw):
    """A vLLM ``LLM`` with Perec's processor loaded.  Call it under
    ``if __name__ == "__main__":`` (vLLM spawns its engine process)."""
    # The processor implements the V1 model runner's interface; 0.32 still has that runner
    # and picks it on CPUs anyway (its V2 runner needs Triton).
    os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    from vllm import LLM

    kw.setdefault("kv_cache_memory_bytes", int(kv_cache_gib * (1 << 30)))
    return LLM(model=str(vllm_model_dir(model_dir)), dtype=dtype, max_model_len=max_model_len,
               logits_processors=[PROCESSOR], **kw)


def run_batch(requests: Iterable[dict | Request], model_dir=None, *, llm=None, max_in_flight: int = 256,
              **llm_kw) -> Iterator[dict]:
    """Run request dicts through vLLM; yield one result dict per request, as each finishes.

    A request: {"id", "prompt", "constraints" (a spec string or a list), "form",
    "given", "mode", "settings": {max_new_tokens, temperature, top_k, top_p,
    repetition_penalty, seed, greedy, min_new_tokens, stop}}.  A result has the fields of
    ``perec generate --json`` plus "id"; ``seconds`` runs from the batch's start (requests
    share the engine).  A bad or refused request yields {"id", "error"} and the batch
    goes on.  ``llm``: an engine from ``make_llm`` (else one is made from ``model_dir``)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    llm = llm or make_llm(model_dir, **llm_kw)
    engine = llm.llm_engine
    if PROCESSOR not in (engine.model_config.logits_processors or []) and \
            PerecLogitsProcessor not in (engine.model_config.logits_processors or []):
        raise ValueError("this LLM was made without Perec's logits processor: make it with "
                         f"make_llm(), or LLM(..., logits_processors=['{PROCESSOR}'])")
    mc = engine.model_config
    tokenizer = _tokenizer(mc.tokenizer)  # as the processor's
    model = model_name(mc.model)
    pending = iter(requests)
    live: dict[str, tuple[Prepared, list[int], float]] = {}
    t0 = time.perf_counter()
    serial = 0
    more = True
    while more or live:
        while more and len(live) < max_in_flight:
            req = next(pending, None)
            if req is None:
                more = False
                break
            try:
                p = prepare(req, tokenizer, model)
            except ValueError as e:
                rid = req.id if isinstance(req, Request) else req.get("id") if isinstance(req, dict) else None
                yield {"id": rid, "error": str(e)}
                continue
            serial += 1
            key = f"{serial}:{p.id}"  # ids may repeat; the engine's keys may not
            params = SamplingParams(output_kind=RequestOutputKind.DELTA, **p.params)
            engine.add_request(key, {"prompt_token_ids": p.prompt_ids}, params)
            live[key] = (p, [], 0.0)
        if not live:
            continue
        for out in engine.step():
            p, ids, first = live[out.request_id]
            c = out.outputs[0]
            ids.extend(c.token_ids)
            if not first and ids:
                first = time.perf_counter() - t0
            live[out.request_id] = (p, ids, first)
            if out.finished:
                del live[out.request_id]
                ended = {"length": "length", "abort": "abort"}.get(c.finish_reason, "eos")
                if c.finish_reason == "stop" and isinstance(c.stop_reason, str):
                    ended = "stop"
                yield result(p, ids, ended, model, time.perf_counter() - t0, first)
