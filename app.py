"""Perec's browser studio: the Hugging Face Space entry point, and `python app.py` locally.

Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT choose where it listens; PEREC_SPACE=1
(automatic on Spaces) turns on Space mode, and so does a bind other machines can reach
(GRADIO_SERVER_NAME=0.0.0.0) or GRADIO_SHARE, unless PEREC_SPACE=0 is set explicitly
(studio.ui.config.rules_for).  See README.md, "The studio".
"""

from studio.ui import build_app
from studio.ui.config import ensure_embedded_model

ensure_embedded_model()  # a no-op unless running on a Space without the model package
demo = build_app()

if __name__ == "__main__":
    demo.launch()
