"""COLLIE's own checker (``collie-bench`` on PyPI), fed COLLIE's constraint trees.

COLLIE (Yao et al. 2023) judges a text with its ``collie.constraints`` objects: a leaf
``Constraint(InputLevel, TargetLevel, Transformation, Relation, Reduction)`` and the
logic nodes ``All`` / ``And`` / ``Or``.  Our data (../shared/data/collie-dev.jsonl) keeps
each instance's constraint as a JSON tree; ``build`` turns it back into those objects and
``judge`` calls their own ``check(text, targets)``.  Nothing here decides what passes:
that is COLLIE's code, so this is the field's yardstick beside our own checker.

The one change: COLLIE splits with NLTK's ``sent_tokenize`` / ``word_tokenize``, which
need the trained punkt data that cannot be installed here.  They are replaced (once, in
``_use_perec_splitting`` below) by NLTK's untrained ``PunktSentenceTokenizer`` and the
Treebank word tokenizer, through constraints.units: the splitting Perec's rules and
masks use, so the judge and our decoding split alike.
"""

from __future__ import annotations

import collie.constraints as C

from constraints.units import sentences, tokens

LEVELS = (None, "character", "word", "sentence", "paragraph", "passage")
RELATIONS = ("==", "!=", "<", ">", "<=", ">=", "in", "not in")
REDUCTIONS = ("all", "any", "at least", "at most", "exactly")


class TreeError(ValueError):
    """A constraint tree this module cannot rebuild; the message names the node."""


# ------------------------------------------------------------------ splitting

def _words(text: str) -> list[str]:
    """nltk's ``word_tokenize`` shape: split sentences first, then Treebank each one
    (Treebank only separates a full stop at the very end of its input)."""
    return [tok for s in sentences(text) for tok in tokens(s)]


def _use_perec_splitting() -> None:
    # collie/constraints.py does ``from nltk import word_tokenize, sent_tokenize`` and
    # calls those module globals from Level.__call__; replacing the two names in that
    # module is the whole patch.  constraints.units holds the splitters (untrained punkt,
    # Treebank) that Perec's rules and masks count with.  Signatures follow nltk's.
    C.sent_tokenize = lambda text, language="english": sentences(text)
    C.word_tokenize = lambda text, language="english", preserve_line=False: _words(text)


_use_perec_splitting()


# ------------------------------------------------------------------ the tree

def _where(path: str) -> str:
    return path or "the root"


def _transformation(node, path: str):
    """{"count": t} / {"position": p} / {"for_each": inner|null} / {"aggregate": inner} /
    {"max": inner} -> COLLIE's Transformation object."""
    if not isinstance(node, dict) or len(node) != 1:
        raise TreeError(f"transformation at {_where(path)} must be one-key object, got {node!r}")
    (kind, arg), = node.items()
    here = f"{path}.{kind}"
    if kind == "count":
        return C.Count(arg)
    if kind == "position":
        if not (isinstance(arg, int) or (isinstance(arg, list) and all(isinstance(i, int) for i in arg))):
            raise TreeError(f"position at {here} must be an integer or a list of integers, got {arg!r}")
        return C.Position(arg)
    if kind == "for_each":
        return C.ForEach(Ellipsis if arg is None else _transformation(arg, here))
    if kind == "aggregate":
        return C.Aggregate(_transformation(arg, here))
    if kind == "max":
        return C.Max(_transformation(arg, here))
    raise TreeError(f"unknown transformation {kind!r} at {_where(path)}")


def _leaf(node: dict, path: str) -> C.Constraint:
    for key in ("input_level", "target_level", "transformation", "relation", "reduction"):
        if key not in node:
            raise TreeError(f"constraint leaf at {_where(path)} has no {key!r}")
    for key in ("input_level", "target_level"):
        if node[key] not in LEVELS:
            raise TreeError(f"unknown {key} {node[key]!r} at {_where(path)}")
    if node["relation"] not in RELATIONS:
        raise TreeError(f"unknown relation {node['relation']!r} at {_where(path)}")
    red = node["reduction"]
    if red is not None:
        if not (isinstance(red, list) and len(red) == 2 and red[0] in REDUCTIONS):
            raise TreeError(f"bad reduction {red!r} at {_where(path)}")
        reduction = C.Reduction(red[0], red[1])
    else:
        reduction = None
    return C.Constraint(
        C.InputLevel(node["input_level"]),
        C.TargetLevel(node["target_level"]),
        _transformation(node["transformation"], f"{path}.transformation".lstrip(".")),
        C.Relation(node["relation"]),
        reduction,
    )


def build(node, path: str = ""):
    """A COLLIE constraint object from the JSON tree of ../shared/data/README.md."""
    if not isinstance(node, dict):
        raise TreeError(f"constraint node at {_where(path)} must be an object, got {node!r}")
    if "all" in node:
        return C.All(*[build(c, f"{path}.all[{i}]".lstrip(".")) for i, c in enumerate(node["all"])])
    for key, cls in (("and", C.And), ("or", C.Or)):
        if key in node:
            parts = node[key]
            if not (isinstance(parts, list) and len(parts) == 2):
                raise TreeError(f"'{key}' at {_where(path)} needs exactly two children")
            return cls(*[build(c, f"{path}.{key}[{i}]".lstrip(".")) for i, c in enumerate(parts)])
    return _leaf(node, path)


def judge(text: str, record: dict) -> bool:
    """COLLIE's verdict on ``text`` for one instance (its ``constraint`` and ``targets``)."""
    return bool(build(record["constraint"]).check(text, record["targets"]))

