"""The studio's look: a quiet theme and a page that reads like a writing desk.

Gradio 6 takes theme and CSS in ``launch()``; ``StudioBlocks`` supplies ours there, so
``demo.launch()`` in app.py and ``perec serve`` both get them without repeating them.
"""

from __future__ import annotations

import gradio as gr

# System fonts only: a Space or an offline machine must not fetch web fonts.
THEME = gr.themes.Soft(
    primary_hue="orange",
    secondary_hue="amber",
    neutral_hue="stone",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)

CSS = """
.gradio-container { max-width: 1480px !important; }
#masthead h1 { font-family: Georgia, 'Times New Roman', serif; font-weight: 600; margin: 0; }
#masthead p { margin: 2px 0 0 0; color: var(--body-text-color-subdued); }
#editor textarea {
  font-family: Georgia, 'Iowan Old Style', 'Times New Roman', serif;
  font-size: 1.12rem; line-height: 1.65; padding: 18px 20px;
}
#active-chips { min-height: 28px; }
.draft-title { font-family: Georgia, serif; font-style: italic; margin-right: 10px; }
.chip {
  display: inline-block; padding: 2px 10px; margin: 2px 4px 2px 0; border-radius: 999px;
  background: var(--color-accent-soft); border: 1px solid var(--border-color-accent);
  font-size: 0.85rem;
}
.chip-form { background: #e0f2fe; border-color: #7dd3fc; }
.chip-none { background: transparent; border-style: dashed; color: var(--body-text-color-subdued); }
#chips label { border-radius: 999px !important; }
#status { min-height: 1.6em; }
#status p { margin: 0; }
.cand-bar { display: flex; align-items: center; gap: 8px; }
.cand-bar .bar { height: 10px; border-radius: 3px; background: var(--color-accent); min-width: 2px; }
.cand-bar .pct { font-variant-numeric: tabular-nums; color: var(--body-text-color-subdued);
                 font-size: 0.85rem; }
#candidates td { cursor: pointer; }
#spec textarea, #spec input { font-family: ui-monospace, Menlo, monospace; }
"""


class StudioBlocks(gr.Blocks):
    """gr.Blocks whose ``launch()`` defaults to the studio's theme and CSS."""

    def launch(self, *args, **kwargs):
        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        return super().launch(*args, **kwargs)
