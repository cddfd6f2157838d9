"""Values as they arrive over the wire (the page, ``gradio_client``, a saved draft, the
browser's copy), checked and converted: each refusal is one line that names the value.

The page's sliders send numbers, but a script can send anything, and a draft file or a
browser copy can hold anything.  ``studio.decode.settings.Settings`` checks ranges, not
types, so a string temperature would surface as "'>' not supported between instances of
'str' and 'int'"; the conversion to types happens here, once, for the whole studio.
"""

from __future__ import annotations

import math

from constraints.base import shown

SEED_MAX = 2**63 - 1  # torch seeds are 64-bit; JSON clients choke on larger integers too


class BadValue(ValueError):
    """A value of the wrong type or out of range (the message names it)."""


def got(v) -> str:
    """What was sent, for a message: the text itself (short), or its type."""
    if isinstance(v, str):
        return shown(v, 30)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        r = repr(v)
        return r if len(r) <= 20 else f"{v:.3g}"
    return "nothing" if v is None else type(v).__name__


def text(name: str, v, default: str = "") -> str:
    if v is None:
        return default
    if not isinstance(v, str):
        raise BadValue(f"{name} must be text (got {got(v)})")
    return v


def number(name: str, v) -> float:
    """A finite number; numeric text ("0.8") is read as one, as a form field would."""
    x = v
    if isinstance(v, str):
        try:
            x = float(v.strip())
        except ValueError:
            raise BadValue(f"{name} must be a number (got {got(v)})") from None
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise BadValue(f"{name} must be a number (got {got(v)})")
    if not math.isfinite(x):
        raise BadValue(f"{name} must be a finite number (got {got(v)})")
    return float(x)


def whole(name: str, v) -> int:
    x = number(name, v)
    if not x.is_integer():
        raise BadValue(f"{name} must be a whole number (got {got(v)})")
    return int(x)


def bounded(name: str, v, lo: int, hi: int) -> int:
    n = whole(name, v)
    if not lo <= n <= hi:
        raise BadValue(f"{name} must be from {lo} to {hi} (got {n})")
    return n


def seed(v) -> int | None:
    """A seed: blank, None or negative for a random one; else a whole number < 2**63."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    x = number("seed", v)
    if x < 0:
        return None
    if not x.is_integer() or x > SEED_MAX:
        raise BadValue(f"seed must be a whole number from 0 to {SEED_MAX}, or -1 for a random one (got {got(v)})")
    return int(x)


def boolean(name: str, v) -> bool:
    if not isinstance(v, bool):
        raise BadValue(f"{name} must be true or false (got {got(v)})")
    return v


def texts(name: str, v) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadValue(f"{name} must be a list of strings (got {got(v)})")
    return v


# The type of each generation setting (the fields of studio.decode.settings.Settings).
SETTING_TYPES = {
    "max_new_tokens": whole, "min_new_tokens": whole, "temperature": number, "top_k": whole,
    "top_p": number, "repetition_penalty": number, "greedy": boolean, "stop": texts,
    "max_backoffs": whole, "seed": lambda _name, v: seed(v),
}


# A draft's record of its settings: those, and the page's search width (lines tried per line).
RECORD_TYPES = {**SETTING_TYPES, "search": whole}


def settings_record(d) -> dict:
    """A settings dict as a draft stores it, its values checked for type (ranges are
    Settings' job) and converted.  Raises BadValue naming the first bad one."""
    if not isinstance(d, dict):
        raise BadValue(f"settings must be an object (got {got(d)})")
    out = {}
    for k, v in d.items():
        kind = RECORD_TYPES.get(k)
        if kind is None:
            raise BadValue(f"unknown setting {shown(k, 30)}")
        out[k] = kind(k, v)
    return out
