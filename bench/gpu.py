"""GPU speed check with randomly initialised weights (speed does not depend on their
values) in SmolLM2-135M's shape and in a ~1B shape, with the real tokenizer.

    python bench/gpu.py --tokenizer DIR [--tokens 100]

Prints, per model: our loop vs model.generate, lipogram-e vs unconstrained, word-level
(syllables:1) vs unconstrained, our LogitsProcessor inside generate; and how many
device->host syncs one constrained decoding step makes (the design says: one, the id).
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig  # noqa: E402

from models.loading import LoadedModel  # noqa: E402
from studio.benchmark import run_speed  # noqa: E402
from studio.decode.engine import Engine  # noqa: E402
from studio.decode.settings import Settings  # noqa: E402
from constraints.spec import parse_spec  # noqa: E402


def one_b_config(base) -> LlamaConfig:
    cfg = LlamaConfig(**{k: v for k, v in base.to_dict().items() if k in LlamaConfig().to_dict()})
    cfg.hidden_size, cfg.intermediate_size = 2048, 8192
    cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads = 16, 32, 8
    cfg.head_dim = 64
    return cfg


def syncs_per_step(engine, spec: str, tokens: int = 40) -> float:
    """Count synchronising CUDA calls during a constrained generation, per token."""
    s = Settings(max_new_tokens=tokens, min_new_tokens=tokens, greedy=True, repetition_penalty=1.0)
    engine.generate("The old house", parse_spec(spec), s)  # warm: masks built, caches filled
    torch.cuda.set_sync_debug_mode(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = engine.generate("The old house", parse_spec(spec), s)
    torch.cuda.set_sync_debug_mode(0)
    n = sum("synchroniz" in str(w.message).lower() for w in caught)
    return n / max(r.tokens, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small-only", action="store_true", help="skip the 1B shape (dry runs)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians reported)")
    args = ap.parse_args()
    dev = torch.device(args.device)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    base_cfg = AutoConfig.from_pretrained(args.tokenizer)
    out = {"gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "torch": torch.__version__}
    shapes = [("SmolLM2-135M shape", base_cfg)] + ([] if args.small_only else [("1B shape", one_b_config(base_cfg))])
    for name, cfg in shapes:
        torch.manual_seed(0)
        t0 = time.perf_counter()
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype).to(dev).eval()
        params = sum(p.numel() for p in model.parameters())
        lm = LoadedModel(model, tok, name, dev, dtype, time.perf_counter() - t0)
        eng = Engine(lm)
        rep = run_speed(eng, tokens=args.tokens, repeats=args.rounds)
        word = run_speed(eng, tokens=args.tokens, repeats=args.rounds, spec="syllables:1")
        res = {"params_m": round(params / 1e6), "table": rep["table"], "ratios": rep["ratios"],
               "word_ratio": word["ratios"], "word_table": word["table"],
               "syncs_per_step_lipogram": syncs_per_step(eng, "lipogram:e") if dev.type == "cuda" else -1,
               "syncs_per_step_syllables1": syncs_per_step(eng, "syllables:1") if dev.type == "cuda" else -1}
        out[name] = res
        print(f"== {name} ({res['params_m']}M params)\n{rep['table']}\n{word['table']}\n"
              f"syncs/step: lipogram {res['syncs_per_step_lipogram']:.2f}, "
              f"syllables:1 {res['syncs_per_step_syllables1']:.2f}", flush=True)
        del model, eng, lm
        torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
