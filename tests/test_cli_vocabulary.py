"""The four tools speak one language: the same flags, the same exit codes, the same help epilog.

Each claim is checked on every subcommand of ``ckpt-migrate``, ``ckpt-finetune``,
``ckpt-quantize`` and ``ckpt-report``, through their real ``main`` and parsers.
"""
from __future__ import annotations

import argparse
import json

import pytest

import finetune.cli
import migrate.cli
import quantize.cli
import reports.cli
from reports.console import EXIT_CODES, REPORT_FORMATS

TOOLS = {"ckpt-migrate": migrate.cli, "ckpt-finetune": finetune.cli, "ckpt-quantize": quantize.cli,
         "ckpt-report": reports.cli}
# A run that reaches the library with input it cannot use, per tool; the model-free ones first.
BAD_INPUT = {
    "ckpt-migrate": lambda tmp: ["inspect", str(tmp / "missing.ckpt")],
    "ckpt-finetune": lambda tmp: ["eval", "--pipeline-config", str(tmp / "missing.config"), "--out",
                                  str(tmp / "run")],
    "ckpt-quantize": lambda tmp: ["eval", str(tmp / "missing-export"), "--keras-model", str(tmp / "missing.h5")],
    "ckpt-report": lambda tmp: ["render", str(tmp / "missing.json")],
}
# The subcommand function a KeyboardInterrupt is raised from, with arguments that parse.
INTERRUPTED = {
    "ckpt-migrate": ("_inspect", ["inspect", "x"]),
    "ckpt-finetune": ("_eval", ["eval", "--out", "x"]),
    "ckpt-quantize": ("_eval", ["eval", "x", "--keras-model", "m.h5"]),
    "ckpt-report": ("_render", ["render", "x.json"]),
}


def _subcommands(module) -> dict[str, argparse.ArgumentParser]:
    parser = module._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


ALL_SUBCOMMANDS = [(tool, name) for tool, module in TOOLS.items() for name in _subcommands(module)]


@pytest.mark.parametrize("tool,command", ALL_SUBCOMMANDS)
def test_every_subcommand_has_the_shared_flags(tool, command):
    options = _options(_subcommands(TOOLS[tool])[command])
    for flag in ("--debug", "--quiet", "--format", "--output", "--overwrite"):
        assert flag in options, f"{tool} {command} has no {flag}"
    formats = options["--format"].choices
    assert set(formats) <= set(REPORT_FORMATS) and {"text", "json"} <= set(formats), formats
    assert options["--format"].default == "text"
    assert "--report" not in options  # the old spelling is gone everywhere


WRITES_A_DIRECTORY = {("ckpt-migrate", "convert"), ("ckpt-migrate", "zoo"), ("ckpt-finetune", "train"),
                      ("ckpt-finetune", "eval"), ("ckpt-finetune", "transfer"), ("ckpt-finetune", "export"),
                      ("ckpt-quantize", "prune"),
                      ("ckpt-quantize", "qat"), ("ckpt-quantize", "export"), ("ckpt-quantize", "run")}


@pytest.mark.parametrize("tool,command", ALL_SUBCOMMANDS)
def test_the_directory_a_command_writes_is_out_everywhere(tool, command):
    parser = _subcommands(TOOLS[tool])[command]
    options = _options(parser)
    writes = (tool, command) in WRITES_A_DIRECTORY
    assert ("--out" in options) == writes, f"{tool} {command}"
    if writes:
        assert options["--out"].required and options["--out"].metavar == "DIR"
    assert not {"--model-dir", "--output-dir", "--out-dir", "--output_directory"} & set(options)
    positionals = {a.dest for a in parser._actions if not a.option_strings}
    assert not {"out", "output", "output_dir", "model_dir"} & positionals, positionals


@pytest.mark.parametrize("tool", TOOLS)
def test_every_help_ends_with_the_exit_codes(tool, capsys):
    module = TOOLS[tool]
    for argv in [["--help"]] + [[name, "--help"] for name in _subcommands(module)]:
        with pytest.raises(SystemExit) as e:
            module.main(argv)
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert "exit codes:" in text, argv
        for code in EXIT_CODES:
            assert f"  {code} " in text, (argv, code)


@pytest.mark.parametrize("tool", TOOLS)
def test_unusable_input_is_one_line_and_exit_2_and_debug_keeps_the_code(tool, tmp_path, capsys):
    argv = BAD_INPUT[tool](tmp_path)
    assert TOOLS[tool].main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tool}: error: ") and "Traceback" not in captured.err, lines
    assert TOOLS[tool].main(["--debug", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1] == lines[0]


@pytest.mark.parametrize("tool", TOOLS)
def test_an_interrupt_is_exit_130(tool, monkeypatch, capsys):
    function, argv = INTERRUPTED[tool]

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(TOOLS[tool], function, interrupted)
    assert TOOLS[tool].main(argv) == 130
    assert "interrupted; rerun to resume" in capsys.readouterr().err


def test_an_incomplete_mapping_is_exit_1(zoo, capsys):
    # the fixture VGG is narrower than Keras' fixed-width VGG16: shape mismatches (ckpt-report diff: test_report_cli)
    assert migrate.cli.main(["map", str(zoo["vgg_16_small"]), "--target", "keras:VGG16", "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["summary"]["shape_mismatches"] > 0


def test_target_none_is_the_generic_conversion(zoo, tmp_path, capsys):
    src = str(zoo["mobilenet_v1_small"])
    assert migrate.cli.main(["map", src, "--target", "none", "--format", "json"]) == 0
    generic = json.loads(capsys.readouterr().out)
    assert migrate.cli.main(["map", src, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == generic
    report = tmp_path / "conversion.json"
    assert migrate.cli.main(["convert", src, "--out", str(tmp_path / "out"), "--target", "none", "--quiet",
                             "--format", "json", "--output", str(report)]) == 0
    assert json.loads(report.read_text())["mode"] == "generic"
    assert (tmp_path / "out" / "checkpoint").is_file()


def test_output_writes_the_report_and_refuses_to_replace_it(zoo, tmp_path, capsys):
    page = tmp_path / "audit.html"
    src = str(zoo["mobilenet_v1_small"])
    assert migrate.cli.main(["inspect", src, "--format", "html", "--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert migrate.cli.main(["inspect", src, "--format", "json", "-o", str(page)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert migrate.cli.main(["inspect", src, "--format", "json", "-o", str(page), "--overwrite"]) == 0
    assert json.loads(page.read_text(encoding="utf-8"))["format"] == "tf1-v2"
