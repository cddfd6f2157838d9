"""A kill -9 of the server mid-generation loses no text that was already shown.

The studio runs as a writer runs it (``python app.py``, its port and data folder from the
environment).  A client streams a generation through the page's own endpoint and, as the
browser does, saves the draft after each change it shows (studio_check: the editor's change
event), with the revision token the page holds beside the text (each streamed piece brings
its own).  The server is killed with SIGKILL right after a new piece arrives, before the
page's save of that piece can have run; after a restart, the draft holds every piece shown.
(It does because the Generate handler saves each piece before sending it, and because a
page's save that arrives late, after the next piece was saved, is dropped rather than
taking the row back: studio/ui/callbacks.py, studio/ui/drafts.py text_decision.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.conftest import ROOT

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.real

PROMPT = "The lighthouse keeper climbed the stairs at dusk, and"
# The settings panel: model, mode, temperature, top_k, top_p, repetition penalty, max tokens, seed,
# search width
SETTINGS = ["", "continue", 0.8, 50, 0.95, 1.1, 300, 11, 0]
START_S = 300  # the longest a start may take (a cold model conversion is about a minute)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data, log):
    """``python app.py`` on a free port; returns (process, url) once it answers."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port), PEREC_DATA=str(data),
               PEREC_SPACE="0", GRADIO_ANALYTICS_ENABLED="False")
    env.pop("SPACE_ID", None)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + START_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the studio exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(url + "config", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"the studio did not answer within {START_S} s; see {log.name}")


def test_kill_9_mid_generation_loses_no_shown_text(tmp_path):
    from gradio_client import Client

    data = tmp_path / "data"
    with open(tmp_path / "server.log", "w") as log:
        proc, url = start(data, log)
        try:
            c = Client(url, verbose=False)
            # The writer's draft, saved; the answer gives the page its revision token.
            token = c.predict(PROMPT, *SETTINGS, "", api_name="/studio_check")[3]
            assert isinstance(token, str) and ":" in token, token
            job = c.submit(PROMPT, "", *SETTINGS, token, api_name="/studio_generate")
            shown, saving = PROMPT, threading.Event()

            def browser_save(text: str, based_on: str) -> None:  # the editor's change event, as the page runs it
                try:
                    c.predict(text, *SETTINGS, based_on, api_name="/studio_check")
                except Exception:  # noqa: BLE001  (the server is killed under it)
                    pass
                finally:
                    saving.clear()

            deadline, pieces = time.time() + START_S, 0
            while time.time() < deadline and pieces < 12 and not job.done():
                outs = [o for o in job.outputs() if o and isinstance(o[0], str)]
                if outs and outs[-1][0] != shown and outs[-1][0].startswith(PROMPT):
                    shown, pieces = outs[-1][0], pieces + 1
                    token = outs[-1][2] if isinstance(outs[-1][2], str) else token  # the piece's token
                    if not saving.is_set():  # trigger_mode="always_last": one save at a time
                        saving.set()
                        threading.Thread(target=browser_save, args=(shown, token), daemon=True).start()
                time.sleep(0.005)
            assert pieces >= 12 and not job.done(), f"the generation did not stream ({pieces} pieces)"
            os.kill(proc.pid, signal.SIGKILL)  # right after a new piece was shown
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
        assert len(shown) > len(PROMPT) + 20

        proc, url = start(data, log)  # the same data folder, a new server
        try:
            c = Client(url, verbose=False)
            listed = c.predict(api_name="/studio_list_drafts")
            ids = [choice[1] for choice in listed["choices"]]
            assert len(ids) == 1, listed
            view = c.predict(ids[0], api_name="/studio_open_draft")
            saved = view[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    assert saved.startswith(shown), f"shown {len(shown)} characters, saved {len(saved)}:\n{shown!r}\n{saved!r}"
