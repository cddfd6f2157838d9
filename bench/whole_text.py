"""Issue 6's measures for whole-text rules, in one run on this machine:

- must-use words (include:, 3-5 words, 60 tokens) on 20 prompts: share of words present
  within the budget (target 100%), perplexity beside the unconstrained run, how often
  forcing was needed;
- pangram within 200 tokens on the same prompts (target 100%), perplexity;
- theme: share of content words within the threshold (target 100%), tokens/s against
  unconstrained after the one-time embedding cache (target >= 0.85), and that one-time cost.

Perplexity is the plain model's, of each generated text after its prompt, token-weighted
over the suite, beside an unconstrained sampled run of the same length and seed (pangram
runs stop once complete, and are compared with that 60-token baseline).

    python bench/whole_text.py [--prompts 20] [--theme-prompts 4] [--parts include,pangram,theme]
Writes bench/results/whole_text.md (a run of some parts keeps the other parts' rows).
"""

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SUITE = [
    ("Write a short story about a sailor.", "lighthouse,orange,whisper"),
    ("Describe your favourite breakfast.", "coffee,window,rain"),
    ("Tell me about a walk in the park.", "dog,bench,yellow,wind"),
    ("Write a letter to an old friend.", "garden,winter,laugh"),
    ("Describe a busy city street.", "taxi,bread,music,umbrella"),
    ("Tell a story about a lost key.", "drawer,mother,silver"),
    ("Write about a day at the beach.", "shell,sunset,kite,salt"),
    ("Describe a school classroom.", "chalk,clock,window,paper,quiet"),
    ("Tell me about your first job.", "money,boss,morning"),
    ("Write a story about a dragon.", "cave,gold,village,fire"),
    ("Describe a thunderstorm at night.", "lightning,candle,dog"),
    ("Write about a train journey.", "ticket,mountain,sandwich,window"),
    ("Tell a story about a robot.", "battery,friend,garden"),
    ("Describe a farmers market.", "apple,honey,basket,cheese,sun"),
    ("Write about learning to swim.", "water,father,fear"),
    ("Describe an old library.", "dust,ladder,map,silence"),
    ("Tell me about a birthday party.", "cake,balloon,music,cousin"),
    ("Write a story about a cat.", "roof,milk,moon"),
    ("Describe a mountain village in winter.", "snow,chimney,bread,bell"),
    ("Write about a rainy Sunday.", "book,tea,blanket,window,cat"),
]
THEMES = [("ocean", "Write about a day at sea."), ("forest", "Describe a walk in the woods."),
          ("music", "Tell me about a concert."), ("kitchen", "Describe cooking dinner at home.")]
INCLUDE_TOKENS, PANGRAM_TOKENS, THEME_TOKENS = 60, 200, 60


def chat_prompt(engine, prompt: str) -> str:
    return engine.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                add_generation_prompt=True, tokenize=False)


class Perplexity:
    """Token-weighted perplexity over a suite."""

    def __init__(self, engine):
        self.engine, self.nll, self.tokens = engine, 0.0, 0

    def add(self, prompt: str, text: str) -> None:
        from studio.scoring import score_text

        if text.strip():
            s = score_text(self.engine, text, prompt=chat_prompt(self.engine, prompt))
            self.nll += s.nll * s.tokens
            self.tokens += s.tokens

    @property
    def value(self) -> float:
        return math.exp(self.nll / self.tokens) if self.tokens else float("nan")


def run(engine, prompt, spec, tokens, seed, min_tokens=0):
    from studio.decode.settings import Settings
    from constraints.spec import parse_spec

    c = parse_spec(spec) if spec else None
    g = engine.stream(prompt, c, Settings(max_new_tokens=tokens, min_new_tokens=min_tokens, seed=seed),
                      mode="instruct")
    t0 = time.perf_counter()
    g.run()
    return g, time.perf_counter() - t0


def bench_include(engine, suite, log, progress) -> None:
    from studio.masks.include import IncludeMasker

    base, inc = Perplexity(engine), Perplexity(engine)
    words = present = forced_words = runs_forced = forced_tokens = inc_tokens = 0
    for seed, (prompt, ws) in enumerate(suite):
        g, _ = run(engine, prompt, None, INCLUDE_TOKENS, seed)
        base.add(prompt, g.result.text)
        g, _ = run(engine, prompt, f"include:{ws}@{INCLUDE_TOKENS}", INCLUDE_TOKENS, seed)
        m = next(m for m in g.masks if isinstance(m, IncludeMasker))
        missing = g.constraint.missing(engine.vocab.decode(g.result.token_ids[:INCLUDE_TOKENS]))
        n = len(ws.split(","))
        words += n
        present += n - len(missing)
        forced_words += len(m.forced_words)
        runs_forced += bool(m.forced)
        forced_tokens += m.forced
        inc_tokens += g.result.tokens
        inc.add(prompt, g.result.text)
        log(f"  include {ws}: missing {missing}, forced {sorted(m.forced_words)}: {g.result.text!r}")
        k = seed + 1
        progress([
            f"| must-use: words present within {INCLUDE_TOKENS} tokens ({k} prompts) "
            f"| {present}/{words} ({100 * present / words:.0f}%) |",
            f"| must-use: perplexity, unconstrained / include ({INCLUDE_TOKENS} tokens) "
            f"| {base.value:.1f} / {inc.value:.1f} |",
            f"| must-use: runs where forcing was needed | {runs_forced}/{k} ({100 * runs_forced / k:.0f}%) |",
            f"| must-use: words written (in part) by forced tokens "
            f"| {forced_words}/{words} ({100 * forced_words / words:.0f}%) |",
            f"| must-use: forced tokens / include tokens "
            f"| {forced_tokens}/{inc_tokens} ({100 * forced_tokens / max(inc_tokens, 1):.1f}%) |",
        ])


def bench_pangram(engine, suite, log, progress) -> None:
    """Each run streams and stops once the text is a pangram: what is measured is how soon
    it completes (never past 200 tokens) and the perplexity of the text it took."""
    from studio.decode.settings import Settings
    from constraints.spec import parse_spec

    c = parse_spec("pangram")
    pan = Perplexity(engine)
    done, took = 0, []
    for seed, (prompt, _ws) in enumerate(suite):
        g = engine.stream(prompt, c, Settings(max_new_tokens=PANGRAM_TOKENS, seed=seed), mode="instruct")
        text = ""
        for piece in g:
            text += piece
            if not c.check(text):
                g.cancel()
        ok = not c.check(g.result.text) and g.result.tokens <= PANGRAM_TOKENS
        done += ok
        took.append(g.result.tokens)
        pan.add(prompt, g.result.text)
        log(f"  pangram ok={ok} after {g.result.tokens} tokens: {g.result.text!r}")
        k = seed + 1
        progress([
            f"| pangram: complete within {PANGRAM_TOKENS} tokens ({k} prompts) | {done}/{k} ({100 * done / k:.0f}%) |",
            f"| pangram: tokens until complete, mean / max | {sum(took) / k:.0f} / {max(took)} |",
            f"| pangram: perplexity of the text until complete | {pan.value:.1f} |",
        ])


def bench_theme(engine, themes, log) -> list[str]:
    import constraints.semantic as sem
    from constraints.semantic import is_content_word
    from constraints.units import iter_words
    from constraints.spec import parse_spec

    t0 = time.perf_counter()
    cached = (sem.cache_dir() / "semantic").exists() and any((sem.cache_dir() / "semantic").glob("*.npy"))
    sem.lexicon_table()
    table_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for th, _p in themes:
        parse_spec(f"theme:{th}").field()
    field_s = (time.perf_counter() - t0) / len(themes)

    # Warm-up (not timed): each theme's word set and a first run of per-prefix masks,
    # which the word masks build once and keep (as they do over a writing session).
    for i, (th, prompt) in enumerate(themes):
        run(engine, prompt, f"theme:{th}", THEME_TOKENS, 1000 + i)
        run(engine, prompt, None, 8, 1000 + i)
    content = within = 0
    t_unc = t_theme = 0.0
    for i, (th, prompt) in enumerate(themes):
        for seed in (i, 100 + i):  # two sampled runs each, interleaved with the baseline
            _, dt = run(engine, prompt, None, THEME_TOKENS, seed, min_tokens=THEME_TOKENS)
            t_unc += dt
            g, dt = run(engine, prompt, f"theme:{th}", THEME_TOKENS, seed, min_tokens=THEME_TOKENS)
            t_theme += dt
            words = [m.group() for m in iter_words(g.result.text) if is_content_word(m.group())]
            bad = g.constraint.check(g.result.text)
            content += len(words)
            within += len(words) - len(bad)
            log(f"  theme:{th}: {len(words)} content words, {len(bad)} outside: {g.result.text[:160]!r}")
    n_tok = THEME_TOKENS * 2 * len(themes)
    unc_tps, th_tps = n_tok / t_unc, n_tok / t_theme
    how = "loaded from the disk cache" if cached else "computed and cached (one time)"
    return [
        f"| theme: content words within the threshold | {within}/{content} ({100 * within / max(content, 1):.0f}%) |",
        f"| theme: tokens/s unconstrained / theme (ratio) | {unc_tps:.1f} / {th_tps:.1f} ({th_tps / unc_tps:.2f}) |",
        f"| theme: lexicon embeddings ({len(sem.lexicon_table().words)} words), {how} | {table_s:.1f} s |",
        f"| theme: field of one theme from the cached embeddings | {field_s:.2f} s |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=len(SUITE))
    ap.add_argument("--theme-prompts", type=int, default=len(THEMES))
    ap.add_argument("--parts", default="include,pangram,theme")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "whole_text.md"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quiet", action="store_true", help="only the table")
    args = ap.parse_args()

    import studio

    log = (lambda *_: None) if args.quiet else (lambda s: print(s, flush=True))
    engine = studio.load(device=args.device)
    suite = SUITE[: args.prompts]
    t0 = time.perf_counter()
    rows: list[str] = []
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    order = ("must-use", "pangram", "theme")
    parts = args.parts.split(",")
    if set(parts) - {"include", "pangram", "theme"}:
        ap.error("--parts takes include, pangram, theme")
    # Each row names its part; rows of parts not run now are kept from the last file, so
    # the parts can be measured one at a time on a busy machine.
    mine = {{"include": "must-use"}.get(p, p) for p in parts}
    kept = [r for r in (out.read_text().splitlines() if out.exists() else [])
            if r.startswith("| ") and r[2:].split(":")[0] in order and r[2:].split(":")[0] not in mine]

    def write(part_rows=()) -> None:
        # Written after each prompt, so a long run leaves what it measured so far.
        rows[:] = [r for r in rows if r[2:].split(":")[0] != (part_rows[0][2:].split(":")[0] if part_rows else None)]
        rows.extend(part_rows)
        all_rows = sorted(kept + rows, key=lambda r: order.index(r[2:].split(":")[0]))
        text = "\n".join([f"device {engine.device}, model {engine.name}, instruct mode, sampled "
                          f"(seed = prompt index); last run: parts {args.parts}, "
                          f"{time.perf_counter() - t0:.0f} s", "", "| measure | value |", "| --- | --- |"]
                         + all_rows)
        out.write_text(f"$ python bench/whole_text.py --prompts {len(suite)} --theme-prompts "
                       f"{args.theme_prompts} --parts {args.parts}\n\n{text}\n")
        return text

    if "theme" in parts:
        write(bench_theme(engine, THEMES[: args.theme_prompts], log))
    if "include" in parts:
        bench_include(engine, suite, log, write)
    if "pangram" in parts:
        bench_pangram(engine, suite, log, write)
    print(write())


if __name__ == "__main__":
    main()
