"""The `perec` command line: exit codes, --json, errors as one line on stderr."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def perec(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=300)


def test_check_passes_and_fails_with_positions():
    ok = perec("check", "-c", "lipogram:e", stdin="A dog ran far.")
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = perec("check", "-c", "lipogram:e", stdin="A dog ran.\nThe end")
    assert bad.returncode == 1
    assert "line 2, col 3" in bad.stdout and "lipogram:e" in bad.stdout


def test_check_json_and_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("Eve")
    out = perec("check", "-c", "lipogram:e", "--file", str(f), "--json")
    d = json.loads(out.stdout)
    assert out.returncode == 1 and d["ok"] is False and len(d["violations"]) == 2
    assert d["violations"][0]["where"] == "line 1, col 1"


def test_constraints_lists_every_spec_with_an_example():
    out = perec("constraints", "--json")
    names = {c["name"] for c in json.loads(out.stdout)["constraints"]}
    assert {"lipogram", "ban", "require", "ascii-only"} <= names
    assert "e.g. lipogram:e" in perec("constraints").stdout


@pytest.mark.parametrize("args, words", [
    (["check", "-c", "lipogramm:e"], "unknown constraint 'lipogramm'"),
    (["check", "-c", "lipogram:"], "needs an argument"),
    (["check", "-c", "(lipogram:e"], "missing ')'"),
    (["check"], "give at least one -c"),
    (["check", "-c", "lipogram:e", "--file", "/nonexistent"], "no such file"),
    (["generate", "--prompt", "", "-c", "lipogram:e"], "empty prompt"),
    (["generate", "--prompt", "x", "--model", "./no/such/model"], "no model at"),
    (["generate", "--prompt", "x", "--model", "/tmp"], "not a model directory"),
    (["generate", "--prompt", "x", "-c", "lipogram:abcdefghijklmnopqrstuvwxyz"], "every letter is banned"),
    (["generate", "--prompt", "x", "--temperature", "0"], "temperature"),
])
def test_bad_input_is_one_line_on_stderr_exit_2(args, words):
    out = perec(*args)
    assert out.returncode == 2, out.stderr
    assert words in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0


def test_model_without_a_tokenizer_is_refused(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path / "m")
    out = perec("generate", "--prompt", "x", "--model", str(tmp_path / "m"))
    assert out.returncode == 2 and "no usable tokenizer" in out.stderr and "Traceback" not in out.stderr


def test_light_commands_import_no_torch():
    """check, constraints and --help need no model: they must not pay for importing torch."""
    code = ("import sys, io, contextlib\n"
            "from studio.cli import main\n"
            "sys.stdin = io.StringIO('A cat.')\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['check', '-c', 'lipogram:e & syllables:1', '--form', 'haiku']) == 1\n"
            "    assert main(['constraints']) == 0\n"
            "    try:\n"
            "        main(['generate', '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('torch', 'transformers')))[:5]\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_spec_parses_without_importing_the_engine_first():
    """The registry does not depend on import order: form: parses in a bare process."""
    code = ("from constraints.spec import parse_spec\n"
            "assert parse_spec('form:haiku & lipogram:e').spec() == 'form:haiku & lipogram:e'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
