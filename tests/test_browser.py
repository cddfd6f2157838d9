"""The studio in a real browser (Playwright driving Debian's /usr/bin/chromium): a writer
picks the Lipogram preset and generates, clicks a next word, reloads, and presses Stop; and a
draft survives through either of its two copies alone (the browser's localStorage with the
server's deleted, the server's in a fresh browser).  Screenshots go to the artifacts dir."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.real]

CHROMIUM = os.environ.get("PEREC_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
NO_E = "A cat sat on a mat, and its tail was long"
SLOW = 120_000  # ms: the model decodes ~15 tokens/s here, slower when the machine is busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(real_engine, tmp_path_factory):
    from studio.ui import UiConfig, build_app

    cfg = UiConfig.from_env(space=False, data=tmp_path_factory.mktemp("browser-data"))
    demo = build_app(real_engine, config=cfg)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    yield demo, f"http://127.0.0.1:{port}/"
    # Let events still running (a next-word refresh after the last click) finish first: a
    # worker thread killed inside a torch call at exit aborts the whole process.
    deadline = time.time() + 120
    while demo._queue.get_active_worker_count() and time.time() < deadline:
        time.sleep(0.2)
    demo.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (`make browser` installs Debian's)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, app):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(SLOW)
    open_studio(pg, app[1])
    yield pg
    ctx.close()


def open_studio(pg, url: str) -> None:
    pg.goto(url)
    # Loaded when the restore event has put the open draft's title above the editor.
    pg.wait_for_selector("#active-chips .draft-title")


def editor(pg):
    return pg.locator("#editor textarea")


def tab(pg, name: str) -> None:
    pg.get_by_role("tab", name=name).click()


def set_number(pg, elem_id: str, value: int) -> None:
    tab(pg, "Settings")  # hidden tabs are not rendered
    box = pg.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")
    tab(pg, "Constraints")


def wait_status(pg, *words: str) -> str:
    pg.wait_for_function(
        "(ws) => { const s = document.querySelector('#status'); return s && ws.some(w => s.innerText.includes(w)); }",
        arg=list(words))
    return pg.locator("#status").inner_text()


def wait_saved(demo, text: str, timeout: float = 30) -> None:
    """Until the server's copy of the open draft holds ``text`` (saves are asynchronous)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = demo.studio.store.latest("local")
        if d is not None and d.text == text:
            return
        time.sleep(0.2)
    raise AssertionError(f"draft not saved: {d.text if d else None!r} != {text!r}")


def test_lipogram_generate_pick_a_word_and_reload(page, app, artifacts):
    demo, url = app
    editor(page).fill(NO_E)
    page.locator("#preset-lipogram").click()
    page.wait_for_function("() => document.querySelector('#active-chips').innerText.includes('no \"e\"')")
    assert page.locator("#spec input, #spec textarea").first.input_value() == "lipogram:e"
    set_number(page, "max-tokens", 24)
    set_number(page, "seed", 3)

    page.locator("#generate").click()
    status = wait_status(page, "Wrote", "ended", "Stopped")
    draft = editor(page).input_value()
    assert draft.startswith(NO_E) and len(draft) > len(NO_E) + 5, status
    assert "e" not in draft.lower()
    page.screenshot(path=str(artifacts / "studio-lipogram.png"), full_page=True)

    # The next-word list follows each change; click its first word.
    page.wait_for_function("() => document.querySelector('#cand-note').innerText.includes('keep every rule')")
    first = page.locator("#candidates tbody tr").first
    word = first.locator("td").first.inner_text().strip()
    assert word and "e" not in word.lower()
    first.click()
    page.wait_for_function("(d) => document.querySelector('#editor textarea').value !== d", arg=draft)
    after = editor(page).input_value()
    assert after.startswith(draft) and after.rstrip().endswith(word.strip("'").replace("\\n", "").strip() or after.rstrip())
    assert len(after) > len(draft)
    page.screenshot(path=str(artifacts / "studio-next-word.png"), full_page=True)

    # A reload loses nothing.
    wait_saved(demo, after)
    page.wait_for_timeout(500)  # the browser copy is written in the same event
    page.reload()
    open_studio(page, url)
    page.wait_for_function("(d) => document.querySelector('#editor textarea').value === d", arg=after)
    assert page.locator("#spec input, #spec textarea").first.input_value() == "lipogram:e"
    page.screenshot(path=str(artifacts / "studio-after-reload.png"), full_page=True)


def test_stop_ends_decoding(page, app, artifacts):
    demo, _ = app
    prompt = "The old house on the hill was"
    editor(page).fill(prompt)
    page.locator("#spec input, #spec textarea").first.fill("")
    page.locator("#spec-apply").click()
    page.wait_for_function("() => document.querySelector('#active-chips').innerText.includes('writes freely')")
    set_number(page, "max-tokens", 600)

    page.locator("#generate").click()
    page.wait_for_function("(n) => document.querySelector('#editor textarea').value.length > n",
                           arg=len(prompt) + 40)
    assert demo.studio.running.count() == 1
    stopped_before = sum(demo.studio.running.cancelled.values())
    page.locator("#stop").click()
    status = wait_status(page, "Stopped by the writer")
    page.screenshot(path=str(artifacts / "studio-stopped.png"), full_page=True)
    tokens = int(status.split("after ")[1].split()[0])
    assert tokens < 600
    # The decoder itself ended: nothing runs, and the draft no longer grows.
    assert demo.studio.running.count() == 0
    assert sum(demo.studio.running.cancelled.values()) == stopped_before + 1
    length = len(editor(page).input_value())
    page.wait_for_timeout(2000)
    assert len(editor(page).input_value()) == length


def test_pick_one_of_three_variants(page, app, artifacts):
    prompt = "The sea was calm and"
    editor(page).fill(prompt)
    page.locator("#spec input, #spec textarea").first.fill("syllables:1")
    page.locator("#spec-apply").click()
    page.wait_for_function("() => document.querySelector('#active-chips').innerText.includes('syllable')")
    set_number(page, "max-tokens", 16)
    set_number(page, "seed", 5)

    page.locator("#variants").click()
    wait_status(page, "3 variants")
    texts = [page.locator(f"#variant-{i} textarea").input_value() for i in (1, 2, 3)]
    assert all(t.strip() for t in texts) and len(set(texts)) == 3, texts
    assert editor(page).input_value() == prompt  # nothing enters the draft before a pick
    page.screenshot(path=str(artifacts / "studio-variants.png"), full_page=True)

    page.locator("#variant-use-2").click()
    wait_status(page, "Kept variant 2")
    assert editor(page).input_value() == prompt + texts[1]
    assert not page.locator("#variants-box").is_visible()
    # The pick is one insertion in the undo history.
    page.locator("#undo").click()
    page.wait_for_function("(p) => document.querySelector('#editor textarea').value === p", arg=prompt)


# ----------------------------------------------------------------- the two copies of a draft

BROWSER_COPY = "() => localStorage.getItem('perec-studio')"  # gr.BrowserState(storage_key=...)


def test_draft_survives_through_local_storage_alone(page, app):
    """The server's copy deleted, a reload restores the draft from the browser's own copy."""
    demo, url = app
    store = demo.studio.store
    text = f"Only this browser keeps these words ({uuid.uuid4().hex[:8]})"
    before = page.evaluate(BROWSER_COPY)
    editor(page).fill(text)
    wait_saved(demo, text)
    # The same event writes the browser's copy (encrypted with the server's key): it changes.
    page.wait_for_function(f"(b) => ({BROWSER_COPY})() !== b", arg=before)
    draft_id = store.latest("local").id
    store.delete(draft_id, "local")
    assert all(text not in d.text for d in store.list("local"))  # the server has nothing of it

    page.reload()
    open_studio(page, url)
    page.wait_for_function("(t) => document.querySelector('#editor textarea').value === t", arg=text)
    restored = store.get(draft_id, "local")  # brought back to the server under its own id
    assert restored is not None and restored.text == text


def test_draft_survives_through_the_server_copy_alone(browser, app):
    """A fresh browser (no localStorage at all) opens the server's latest draft."""
    demo, url = app
    text = f"Only the server keeps these words ({uuid.uuid4().hex[:8]})"
    first = browser.new_context(viewport={"width": 1440, "height": 1100})
    pg = first.new_page()
    pg.set_default_timeout(SLOW)
    open_studio(pg, url)
    editor(pg).fill(text)
    wait_saved(demo, text)
    first.close()

    fresh = browser.new_context(viewport={"width": 1440, "height": 1100})
    try:
        assert fresh.storage_state()["origins"] == []  # nothing stored for any site
        pg = fresh.new_page()
        pg.set_default_timeout(SLOW)
        open_studio(pg, url)
        pg.wait_for_function("(t) => document.querySelector('#editor textarea').value === t", arg=text)
        assert demo.studio.store.latest("local").text == text
    finally:
        fresh.close()
