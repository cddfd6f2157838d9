"""The `perec` command meets bad input and a faulty environment with one line on stderr, never
a traceback, and an exit code from the table in every --help (studio/cli/common.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from studio.cli import main
from studio.cli.common import EXIT_CODES, failure
from tests.conftest import ROOT


def perec(*args, stdin="", env=None, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **(env or {})},
                          timeout=300)


def one_line(out, code: int) -> str:
    """The run ended with ``code`` and said why in one line starting `perec:`."""
    err = out.stderr.strip()
    assert out.returncode == code, (out.returncode, err)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.startswith("perec:") and "\n" not in err, err
    return err


@pytest.mark.parametrize("args", [["--bogus"], [], ["generate", "--temperature", "hot"], ["nosuchcommand"]])
def test_usage_errors_are_one_line_exit_2(args):
    one_line(perec(*args), 2)


def test_every_help_lists_the_exit_codes():
    top = perec("--help")
    assert top.returncode == 0 and EXIT_CODES in top.stdout
    for command in ("check", "generate", "batch", "serve"):
        out = perec(command, "--help")
        assert out.returncode == 0 and "exit codes:" in out.stdout and "130" in out.stdout, command


def test_a_directory_where_a_file_is_wanted(tmp_path):
    assert "is a directory" in one_line(perec("check", "-c", "lipogram:e", "--file", str(tmp_path)), 2)
    # --bank DIR: the word bank is read before any model loads.
    assert "is a directory" in one_line(perec("generate", "--prompt", "x", "--bank", str(tmp_path)), 2)


def test_an_output_that_cannot_be_written_is_an_environment_fault(tmp_path):
    requests = tmp_path / "in.jsonl"
    requests.write_text('{"id": "a", "prompt": "x"}\n')
    # /proc refuses the file whoever runs the test (root included, as in CI).
    one_line(perec("batch", "--in", str(requests), "--out", "/proc/version", "--no-progress"), 4)


def test_a_vllm_that_fails_to_start_is_one_line(tmp_path):
    """vLLM failing at start (here: its import raising, as a broken CUDA set-up does)."""
    fake = tmp_path / "site" / "vllm"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise RuntimeError("CUDA driver initialization failed\\n  more detail")\n')
    requests = tmp_path / "in.jsonl"
    requests.write_text('{"id": "a", "prompt": "x"}\n')
    out = perec("batch", "--in", str(requests), "--out", str(tmp_path / "out.jsonl"), "--backend", "vllm",
                "--no-progress", env={"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT)])})
    assert "CUDA driver initialization failed" in one_line(out, 4)


def test_a_model_that_fails_to_load_is_one_line(tmp_path):
    """A model folder with a good config and tokenizer whose weights are broken: the load
    fails inside transformers."""
    import shutil

    from models.loading import embedded_path

    embedded, _ = embedded_path()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(embedded / name, tmp_path / name)
    (tmp_path / "model.safetensors").write_bytes(b"this is not a safetensors file")
    out = perec("generate", "--prompt", "x", "--model", str(tmp_path))
    assert "tokenizer" not in out.stderr  # it got as far as the weights
    assert out.returncode in (2, 4)
    one_line(out, out.returncode)


def test_a_closed_output_pipe_ends_quietly():
    """`perec constraints | head`: the reader is gone before the first line is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-m", "studio.cli", "constraints"], stdout=write,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    finally:
        os.close(write)
    assert out.returncode == 0 and out.stderr == "", out.stderr


class Interrupted(io.StringIO):
    def read(self, *a):
        raise KeyboardInterrupt


def test_ctrl_c_is_one_line_exit_130(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", Interrupted())
    assert main(["check", "-c", "lipogram:e"]) == 130
    assert capsys.readouterr().err == "perec: interrupted\n"


@pytest.mark.parametrize("error, code, words", [
    (ValueError("bad spec\nwith detail"), 2, "error: bad spec; with detail"),
    (FileNotFoundError(2, "No such file or directory", "words.txt"), 2, "error: words.txt: no such file or directory"),
    (PermissionError(13, "Permission denied", "out.jsonl"), 4, "error: out.jsonl: permission denied"),
    (OSError(28, "No space left on device"), 4, "error: no space left on device (reading or writing a file)"),
    (RuntimeError("vLLM engine failed to start"), 4, "error: RuntimeError: vLLM engine failed to start"),
    (MemoryError(), 4, "error: out of memory"),
    (KeyboardInterrupt(), 130, "interrupted"),
])
def test_the_one_place_errors_become_lines(error, code, words):
    assert failure(error) == (words, code)
