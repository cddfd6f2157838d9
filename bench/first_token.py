"""Time from process start to the first generated token, and peak memory.

Run in a fresh process: `python bench/first_token.py` (warm: the converted model is in
PEREC_CACHE) or with an empty PEREC_CACHE (cold: the one-time GGUF conversion runs).
Prints one JSON line."""

import json
import resource
import sys
import time

T0 = time.perf_counter()
sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__file__)))

import studio  # noqa: E402

engine = studio.load()
loaded = time.perf_counter()
g = studio.stream("The old house on the hill", "lipogram:e", engine=engine, max_new_tokens=8, seed=1)
first = None
for _ in g:
    first = first or time.perf_counter()
print(json.dumps({
    "converted": engine.lm.converted,
    "engine": engine.backend,
    "load_seconds": round(loaded - T0, 2),
    "first_token_seconds": round(first - T0, 2),  # process start to the first streamed text
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
