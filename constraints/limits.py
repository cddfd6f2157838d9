"""Every bound on what a request may ask of the server, in one table.

A public Space is sent any request, by hand, thousands of times: each input the server
accepts has a cap here, applied on the server (never only in the page), in Space mode and
out.  A cap is refused in one line that names the cap and the setting that changes it,
for example::

    spec too long: 1048576 characters (the cap is 20000; setting PEREC_MAX_SPEC_CHARS)

``value(space)`` is the cap in force; a few caps are tighter on a Space than on a writer's
own machine (``space_default``).  Each cap reads its environment variable when asked (so a test or an operator can change
it without a restart of the interpreter), falling back to its default; a value that is not
a positive whole number is ignored with the default kept, never a crash at request time.

Pure Python: imported by ``constraints`` (spec length, argument lists), ``models``
(discriminator examples) and ``studio`` (drafts, rules, steering, sessions) alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class LimitError(ValueError):
    """A request past one of the server's caps; the message names the cap and its setting."""


@dataclass(frozen=True)
class Cap:
    what: str  # what is counted, as the refusal names it ("spec length", "rules per draft")
    setting: str  # the environment variable that changes it
    default: int
    unit: str = ""  # "characters", "words", ... (shown after the numbers)
    space_default: int | None = None  # a tighter default on a shared Space (None: the same)

    def value(self, space: bool = False) -> int:
        """The cap in force: the setting if it is a positive whole number, else the default
        (the Space's default when ``space``)."""
        raw = os.environ.get(self.setting, "").strip()
        if raw:
            try:
                v = int(raw)
            except ValueError:
                v = 0
            if v > 0:
                return v
        return self.space_default if space and self.space_default is not None else self.default

    def message(self, got: int, space: bool = False) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.what} too large: {got}{unit} (the cap is {self.value(space)}; setting {self.setting})"

    def check(self, got: int, space: bool = False) -> int:
        """``got`` if within the cap, else LimitError naming the cap and its setting."""
        if got > self.value(space):
            raise LimitError(self.message(got, space))
        return got


# --- what a spec may hold (constraints/spec.py)
SPEC_CHARS = Cap("spec length", "PEREC_MAX_SPEC_CHARS", 20_000, "characters")
ARG_ITEMS = Cap("items in one argument list", "PEREC_MAX_ARG_ITEMS", 2_000, "items")
ARG_CHARS = Cap("one argument", "PEREC_MAX_ARG_CHARS", 10_000, "characters")

# --- what one check or draft may hold (studio)
# A writer's own machine takes long drafts (a novel: 1,000,000 characters); a Space, 50,000.
TEXT_CHARS = Cap("text", "PEREC_MAX_CHARS", 1_000_000, "characters", space_default=50_000)
RULES_PER_DRAFT = Cap("rules per draft", "PEREC_MAX_RULES", 32, "rules")
VIOLATIONS = Cap("violations returned", "PEREC_MAX_VIOLATIONS", 200, "violations")
DRAFTS_PER_OWNER = Cap("drafts per writer", "PEREC_MAX_DRAFTS", 10_000, "drafts", space_default=200)
# An imported draft file; on a Space the same as its upload cap (studio/ui/config.py SPACE_MAX_UPLOAD,
# "2mb": gradio's 2 MiB), which gradio enforces first.
IMPORT_BYTES = Cap("draft file", "PEREC_MAX_IMPORT_BYTES", 5_000_000, "bytes", space_default=2 * 1024 * 1024)

# --- steering (studio/steer.py, studio/ui/steering.py, models/discriminator.py)
STEER_CHARS = Cap("steer text", "PEREC_MAX_STEER_CHARS", 4_000, "characters")
STEER_TOKENS = Cap("steer text", "PEREC_MAX_STEER_TOKENS", 512, "tokens")
BANK_WORDS = Cap("word bank", "PEREC_MAX_BANK_WORDS", 5_000, "words")
DISCRIMINATOR_EXAMPLES = Cap("discriminator examples", "PEREC_MAX_EXAMPLES", 200, "examples")
EXAMPLE_TOKENS = Cap("one discriminator example", "PEREC_MAX_EXAMPLE_TOKENS", 256, "tokens")

# --- sharing the server (studio/ui, studio/decode/scheduler.py)
GENERATIONS_PER_SESSION = Cap("generations running in one session", "PEREC_MAX_SESSION_GENERATIONS", 1,
                              "generations")
# Rows one session decodes at once: Variants decode K rows (studio.ui.work.MAX_VARIANTS, 4),
# a poem's line search its width (MAX_SEARCH, 8).
SESSION_ROWS = Cap("rows decoding in one session", "PEREC_MAX_SESSION_ROWS", 8, "rows")
CHECKS_AT_ONCE = Cap("checks running at once", "PEREC_MAX_CHECKS", 2, "checks")
MODELS_KEPT = Cap("models kept loaded", "PEREC_MAX_MODELS", 2, "models")
# Not a refusal at first: past a burst of three seconds' worth, a session's page events wait
# their turn (studio/ui/pacing.py), so one client's flood of cheap events cannot take the
# server's time from the other writers' streams; one that would wait over half a minute is
# refused.  Off in effect on a writer's own machine.
SESSION_EVENTS = Cap("page events per second in one session", "PEREC_SESSION_EVENTS", 1_000_000, "events",
                     space_default=10)
# Not a refusal: how long a joining prompt may hold the other writers' streams (the prompt
# columns a scheduler step prefills; studio/decode/loop.py).
PREFILL_CHUNK = Cap("prompt tokens prefilled per step", "PEREC_PREFILL_CHUNK", 64, "tokens")

# --- what the page may send (studio/ui/guard.py): any one value of any page event, counted
# as characters of text plus one per item, so no event reads a value no page could send.
PAGE_VALUE_CHARS = Cap("one value sent by the page", "PEREC_MAX_VALUE_CHARS", 4_000_000, "characters",
                       space_default=1_000_000)

ALL = (SPEC_CHARS, ARG_ITEMS, ARG_CHARS, TEXT_CHARS, RULES_PER_DRAFT, VIOLATIONS, DRAFTS_PER_OWNER, IMPORT_BYTES,
       STEER_CHARS, STEER_TOKENS, BANK_WORDS, DISCRIMINATOR_EXAMPLES, EXAMPLE_TOKENS,
       GENERATIONS_PER_SESSION, SESSION_ROWS, SESSION_EVENTS, CHECKS_AT_ONCE, MODELS_KEPT, PREFILL_CHUNK, PAGE_VALUE_CHARS)
