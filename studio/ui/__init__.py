"""The browser studio (Gradio): ``build_app()`` returns the page as a gr.Blocks.

    from studio.ui import build_app
    build_app().launch()            # or `perec serve`, or `python app.py`
"""

from studio.ui.config import UiConfig, space_mode
from studio.ui.layout import build_app

__all__ = ["build_app", "UiConfig", "space_mode"]
