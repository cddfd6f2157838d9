"""The browser's copy of a draft, signed by the server.

Every visitor receives the whole page config, so nothing the page holds is secret: gradio's
BrowserState encrypts localStorage with a key it sends to the page, which hides nothing
from the visitor.  What the server needs is to know that a copy sent back on load is one
it wrote itself, so a script cannot plant draft rows (or forge their fields) through the
page's load event.  So the server signs each copy with an HMAC whose key it never sends
(``UiConfig.browser_key``), and a copy whose signature does not match keeps only its owner
id: the server's copy of the draft stands.

The copy travels through JavaScript and back, which writes 1.0 as 1 and may reorder keys,
so the signature covers a canonical form (sorted keys, whole floats written as integers).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math

import gradio as gr

from studio.ui.persistence import EMPTY_BROWSER

SIGNATURE = "sig"
log = logging.getLogger("perec.studio")

# gradio's BrowserState wants a key to obfuscate localStorage with; it reaches every visitor
# in the page config, so it is a fixed public name, never a server key.  Fixed, so a copy
# written before a restart still reads after it.
PAGE_STORAGE_KEY = "perec-browser-copy (public: every visitor sees this)"


def _canonical(v):
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {str(k): _canonical(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_canonical(x) for x in v]
    return v


def _mac(key: bytes, copy: dict) -> str:
    body = {k: v for k, v in copy.items() if k != SIGNATURE}
    data = json.dumps(_canonical(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hmac.new(key, data.encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, copy):
    """``copy`` with its signature (anything that is not a copy passes unchanged)."""
    if not isinstance(copy, dict) or "draft" not in copy:
        return copy
    try:
        return {**copy, SIGNATURE: _mac(key, copy)}
    except (TypeError, ValueError):  # not JSON (a NaN setting): sent unsigned, so ignored on load
        return copy


def verified(key: bytes, copy) -> dict:
    """The copy sent by a page, if the server signed it; otherwise only its owner id (the
    owner id was always the browser's credential, signed or not) and no draft."""
    if not isinstance(copy, dict):
        return dict(EMPTY_BROWSER)
    owner = copy.get("owner") if isinstance(copy.get("owner"), str) else ""
    sig = copy.get(SIGNATURE)
    try:
        good = isinstance(sig, str) and hmac.compare_digest(sig, _mac(key, copy))
    except (TypeError, ValueError):
        good = False
    if not good:
        if copy.get("draft") is not None:
            log.warning("the browser's copy of a draft was ignored: it is not one this server signed")
        return {**EMPTY_BROWSER, "owner": owner}
    return {k: v for k, v in copy.items() if k != SIGNATURE}

from gradio.events import Dependency

class SignedBrowserState(gr.BrowserState):
    """gr.BrowserState whose value the server signs on the way out and checks on the way
    in; handlers see only a verified copy.  Make it with ``signed_browser_state``."""

    is_template = True  # the page renders it as a plain BrowserState
    _signing_key: bytes = b""

    def preprocess(self, payload):
        return verified(self._signing_key, super().preprocess(payload))

    def postprocess(self, value):
        return sign(self._signing_key, super().postprocess(value))
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


def signed_browser_state(default_value, storage_key: str, signing_key: bytes) -> SignedBrowserState:
    """The page's browser copy.  The key is set after construction, on purpose: gradio
    sends a component's constructor arguments to the page, and the key must stay here."""
    if not signing_key:
        raise ValueError("the browser copy needs a signing key")
    state = SignedBrowserState(default_value, storage_key=storage_key, secret=PAGE_STORAGE_KEY)
    state._signing_key = signing_key
    return state