"""Text transforms as decoding constraints (never by rewriting the model's output).

The original studio (CTGS) rewrote each candidate token: upper / lower case, capitalise,
replace spaces, strip, alphanumeric / alphabetic / digits / ASCII only.  Perec has them as
character rules: a token passes iff its text already has the form, so what the model
writes is what the writer gets.  Already in letters.py / words.py: ``uppercase``,
``lowercase``, ``title-case``, ``no-punctuation``, ``letters-only``, ``ascii-only``,
``no-digits``.  Added here: ``alphanumeric`` and ``no-spaces`` (CTGS's "replace spaces":
words run together).  CTGS's strip transforms only trimmed each token's edges, which as a
rule on a whole text means nothing beyond ``no-spaces``; its digits-only transform bans
every letter, which the engine refuses up front (nothing could be written).
"""

from __future__ import annotations

from constraints.letters import _register_class

# name -> (char_ok, whether a token's partial UTF-8 bytes may pass, description)
TRANSFORMS = {
    "alphanumeric": (lambda c: c.isalnum() or c.isspace(), False, "letters, digits and spaces only"),
    # Partial bytes never build an ASCII space or tab, so they may pass.
    "no-spaces": (lambda c: c not in " \t", True, "no spaces or tabs (words run together)"),
}

for _name, (_ok, _partial, _text) in TRANSFORMS.items():
    _register_class(_name, _ok, _partial, _text)
