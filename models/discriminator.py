"""A small attribute classifier on the model's hidden states, trained in seconds.

The writer supplies labelled examples (two text files, one example per line, or a CSV
with ``text,label``).  Every prefix of every example becomes a training point: the hidden
state at that position, labelled with its example's class.  That makes it a *future*
discriminator in FUDGE's sense: it judges a text from any point on, so at decode time it
can score "text so far + candidate token" for each candidate (controllers.py).

A logistic regression on standardised hidden states of one layer; the layer is chosen
by held-out accuracy among a few candidates, all from the same forward passes.  Only the
candidate layers' states are kept (every layer's, for every token of a large upload, would
be tens of gigabytes), and the examples are capped in number and in tokens each
(``limits.DISCRIMINATOR_EXAMPLES``, ``limits.EXAMPLE_TOKENS``).
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import torch

from constraints import limits
from constraints.limits import LimitError


class DiscriminatorError(ValueError):
    """Examples a discriminator cannot be trained from; the message says why."""


TARGET_LABELS = ("1", "pos", "positive", "true", "yes", "target")


def read_lines(path: str | Path) -> list[str]:
    p = Path(path).expanduser()
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError:
        raise DiscriminatorError(f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise DiscriminatorError(f"{path} is not UTF-8 text") from None
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    if not lines:
        raise DiscriminatorError(f"{path} has no examples (one per line)")
    return lines


def read_csv(path: str | Path, target: str | None = None) -> tuple[list[str], list[str], str, str]:
    """(target examples, other examples, target label, other label) from ``text,label``."""
    p = Path(path).expanduser()
    try:
        rows = list(csv.reader(io.StringIO(p.read_text(encoding="utf-8"))))
    except FileNotFoundError:
        raise DiscriminatorError(f"no such file: {path}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DiscriminatorError(f"{path} is not a readable CSV ({e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    ti, li = 0, 1
    if rows and {c.strip().lower() for c in rows[0]} >= {"text", "label"}:
        head = [c.strip().lower() for c in rows[0]]
        ti, li = head.index("text"), head.index("label")
        rows = rows[1:]
    if any(len(r) <= max(ti, li) for r in rows):
        raise DiscriminatorError(f"{path}: every row needs a text and a label column")
    labels = sorted({r[li].strip() for r in rows})
    if len(labels) != 2:
        raise DiscriminatorError(f"{path}: expected exactly two labels, found {len(labels)}: {labels[:5]}")
    if target is None:
        hits = [lb for lb in labels if lb.lower() in TARGET_LABELS]
        if len(hits) != 1:
            raise DiscriminatorError(f"{path}: say which label to steer toward (one of {labels})")
        target = hits[0]
    if target not in labels:
        raise DiscriminatorError(f"{path}: target label {target!r} is not one of {labels}")
    other = labels[0] if labels[1] == target else labels[1]
    pos = [r[ti].strip() for r in rows if r[li].strip() == target and r[ti].strip()]
    neg = [r[ti].strip() for r in rows if r[li].strip() == other and r[ti].strip()]
    return pos, neg, target, other


@torch.inference_mode()
def hidden_states(model, tokenizer, texts: list[str], context: str = "",
                  layers: list[int] | None = None) -> list[torch.Tensor]:
    """For each text: the hidden states of ``layers`` (0 is the embeddings; None: every
    layer) at the text's own positions, [len(layers), n, H].  Only those layers are kept:
    the forward's other states are dropped with it, one text at a time."""
    dev = next(model.parameters()).device
    out = []
    for t in texts:
        pre = tokenizer.encode(context) if context else []
        ids = pre + tokenizer.encode(t)
        o = model(input_ids=torch.tensor([ids], device=dev), output_hidden_states=True, logits_to_keep=1)
        hs = o.hidden_states if layers is None else [o.hidden_states[i] for i in layers]
        # .clone(): a slice of the stack would keep the context's positions alive with it.
        out.append(torch.stack(hs)[:, 0, len(pre):].float().cpu().clone())
    return out


def layer_count(model) -> int:
    """The model's transformer layers (hidden states are 0 .. this; 0 the embeddings)."""
    return int(model.config.num_hidden_layers)


def check_examples(tokenizer, named: list[tuple[str, list[str]]]) -> None:
    """Refuse, in one line naming the cap's setting, more examples than
    ``limits.DISCRIMINATOR_EXAMPLES`` or one longer than ``limits.EXAMPLE_TOKENS`` tokens,
    before any forward pass."""
    limits.DISCRIMINATOR_EXAMPLES.check(sum(len(ex) for _, ex in named))
    for name, ex in named:
        for i, t in enumerate(ex, 1):
            n = len(tokenizer.encode(t))
            if n > limits.EXAMPLE_TOKENS.value():
                raise LimitError(f"{name} example {i}: {limits.EXAMPLE_TOKENS.message(n)}")


@dataclass
class Discriminator:
    weight: torch.Tensor  # [H], on standardised features
    bias: float
    mean: torch.Tensor
    std: torch.Tensor
    layer: int
    labels: tuple[str, str] = ("target", "other")
    report: dict = field(default_factory=dict)  # accuracies, sizes, seconds

    # ------------------------------------------------------------------ use

    def logit(self, h: torch.Tensor) -> torch.Tensor:
        """Log-odds that text ending in hidden state(s) ``h`` [.., H] has the target attribute."""
        w, m, s = (t.to(h.device) for t in (self.weight, self.mean, self.std))
        return ((h.float() - m) / s) @ w + self.bias

    def prob(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logit(h))

    def score_text(self, engine, text: str, context: str = "") -> float:
        """Mean P(target) over the text's positions (with ``context`` before it, unscored)."""
        hs = hidden_states(engine.model, engine.tokenizer, [text], context, layers=[self.layer])[0][0]
        return float(self.prob(hs).mean())

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, engine, positive: list[str], negative: list[str], *, layers=None, min_position: int = 2,
              holdout: float = 0.25, l2: float = 1e-2, seed: int = 0,
              labels: tuple[str, str] = ("target", "other")) -> "Discriminator":
        """Fit on hidden states of every prefix of the examples (target = ``positive``)."""
        import time

        t0 = time.perf_counter()
        named = [("target", positive), ("other", negative)]
        for name, ex in named:
            if len(ex) < 2:
                raise DiscriminatorError(f"need at least 2 {name} examples to train a discriminator (got {len(ex)})")
        check_examples(engine.tokenizer, named)
        n_layers = layer_count(engine.model)
        layers = list(layers) if layers else sorted({n_layers // 3, n_layers // 2, 2 * n_layers // 3, n_layers})
        bad = [x for x in layers if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= n_layers]
        if bad:
            raise DiscriminatorError(f"layers must be whole numbers 0..{n_layers} (got {bad[0]!r})")
        texts = [(t, 1.0) for t in positive] + [(t, 0.0) for t in negative]
        random.Random(seed).shuffle(texts)
        hs = hidden_states(engine.model, engine.tokenizer, [t for t, _ in texts], layers=layers)
        at = {x: k for k, x in enumerate(layers)}  # a layer's row in each hs[i]
        n_test = max(2, int(len(texts) * holdout))
        test_i, train_i = range(n_test), range(n_test, len(texts))

        def points(idx, layer):
            xs = [hs[i][at[layer], min(min_position, hs[i].shape[1] - 1):] for i in idx]
            ys = [torch.full((len(x),), texts[i][1]) for i, x in zip(idx, xs)]
            return torch.cat(xs), torch.cat(ys)

        best = None
        for layer in layers:
            fit = _fit(*points(train_i, layer), l2)
            acc = _accuracy(fit, *points(test_i, layer))
            if best is None or acc > best[1]:
                best = (layer, acc)
        layer, held_out = best
        x, y = points(range(len(texts)), layer)
        w, b, m, s = _fit(x, y, l2)
        report = {"held_out_accuracy": round(held_out, 4), "train_accuracy": round(_accuracy((w, b, m, s), x, y), 4),
                  "examples": [len(positive), len(negative)], "positions": len(y), "layer": layer,
                  "layers_tried": layers, "seconds": round(time.perf_counter() - t0, 2)}
        return cls(w, b, m, s, layer, labels, report)

    @classmethod
    def from_files(cls, engine, target_file, other_file, **kw) -> "Discriminator":
        """Train from two text files, one example per line (``target_file`` is steered toward)."""
        labels = (Path(target_file).stem, Path(other_file).stem)
        return cls.train(engine, read_lines(target_file), read_lines(other_file), labels=labels, **kw)

    @classmethod
    def from_csv(cls, engine, path, target: str | None = None, **kw) -> "Discriminator":
        pos, neg, t, o = read_csv(path, target)
        return cls.train(engine, pos, neg, labels=(t, o), **kw)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        p = Path(path).expanduser()
        p.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.contiguous(), "mean": self.mean.contiguous(),
                   "std": self.std.contiguous()}, str(p / "discriminator.safetensors"))
        (p / "discriminator.json").write_text(json.dumps(
            {"bias": self.bias, "layer": self.layer, "labels": list(self.labels), "report": self.report}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "Discriminator":
        from safetensors.torch import load_file

        p = Path(path).expanduser()
        try:
            t = load_file(str(p / "discriminator.safetensors"))
            meta = json.loads((p / "discriminator.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError) as e:
            raise DiscriminatorError(f"'{path}' is not a saved discriminator ({e})") from None
        return cls(t["weight"], float(meta["bias"]), t["mean"], t["std"], int(meta["layer"]),
                   tuple(meta["labels"]), meta.get("report", {}))


def _fit(x: torch.Tensor, y: torch.Tensor, l2: float):
    """L2-regularised logistic regression by L-BFGS (a second or two for thousands of points)."""
    m, s = x.mean(0), x.std(0).clamp(min=1e-4)
    z = (x - m) / s
    # Balance the classes, so the bias does not just learn which file was longer.
    pw = (y == 0).sum().clamp(min=1) / (y == 1).sum().clamp(min=1)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y, pos_weight=pw) + l2 * (w @ w)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), float(b.detach()), m, s


def _accuracy(fit, x, y) -> float:
    w, b, m, s = fit
    pred = (((x - m) / s) @ w + b) > 0
    return float((pred == y.bool()).float().mean())
