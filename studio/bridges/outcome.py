"""The result of tokens another engine (vLLM) wrote under Perec's rules, told the way our
own decode loop tells it: the text, why it stopped, and, when the rules were not done at
the end (the token budget ran out mid-word, or a dead end forced EOS), the text trimmed
to its last point where every rule holds, with a message.

The logits processor lives in vLLM's engine process and cannot report back, so the
calling process replays the request's tokens through a mask set of the same rules: it
only advances the rules' state (no masks are built here; the engine process built them),
so it costs a fraction of a decode step.  That the tokens obeyed the rules is the
processor's job (studio/bridges/rows.py) and is judged by each rule's own ``check``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from studio.decode.maskset import MaskSet

BACKOFF_HINT = "vLLM cannot back off: run it with Perec's engine (--backend perec)"


@dataclass
class Outcome:
    text: str
    token_ids: list[int]
    stop_reason: str  # max_tokens | eos | stop_string | dead_end | cancelled
    message: str = ""


def replay(masks: MaskSet, context: str, token_ids: list[int], *, ended: str,
           max_tokens: int, min_tokens: int = 0, drop_space: bool = False,
           stop: tuple[str, ...] = ()) -> Outcome:
    """Replay ``token_ids`` (EOS included or not) through ``masks`` after ``context``.

    ``ended``: how the other engine stopped: "eos", "length" or "abort".  ``stop``: stop
    strings, honoured (as in our loop) only where every rule may end the text."""
    vocab = masks.vocab
    masks.reset(context)
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    kept: list[int] = []
    safe_len = safe_tokens = 0
    stop_reason, message = {"eos": "eos", "abort": "cancelled"}.get(ended, "max_tokens"), ""
    cut = False  # stopped here rather than where the other engine did
    for tok in token_ids:
        if tok in vocab.eos_ids:
            break
        masks.advance(tok)
        kept.append(tok)
        piece = utf8.decode(vocab.raw[tok])
        if not pieces and drop_space and piece.startswith(" "):
            piece = piece[1:]
        pieces.append(piece)
        text = "".join(pieces)
        if stop and masks.done_ok():
            hits = [i for s in stop if (i := text.find(s, max(0, len(text) - len(piece) - len(s) + 1))) != -1]
            if hits:
                pieces, stop_reason, cut = [text[:min(hits)]], "stop_string", True
                break
        if masks.safe() and masks.done_ok():
            # The trim point: every rule holds on the text up to here (a word rule's
            # word in progress is a whole word), so a trimmed text passes `perec check`.
            safe_len, safe_tokens = len(text), len(kept)
    if not cut and ended == "eos" and not (masks.done_ok() and len(kept) >= min_tokens):
        # EOS the rules did not allow: the processor's way out of a dead end.
        stop_reason = "dead_end"
        names = " & ".join(f"'{n}'" for n in masks.blocking(max_tokens - len(kept)))
        message = f"no allowed continuation under {names} ({BACKOFF_HINT})"
    if stop_reason != "stop_string":
        pieces.append(utf8.decode(b"", final=True))
    text = "".join(pieces)
    if not masks.done_ok():
        text, kept = text[:safe_len], kept[:safe_tokens]
        message = message or "trimmed to the last point where every constraint holds"
    return Outcome(text, kept, stop_reason, message)
