"""``ckpt-report``: every report kind round-trips through JSON; render and diff; one-line errors."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports import (
    Ambiguity, ArchitectureGuess, ConvertReport, Finding, InspectReport, LayerError, MappedTensor, MappingReport,
    ParityReport, ShapeMismatch, TensorInfo, TensorStats, ZooReport, ZooRow, render, to_data, totals_of,
)
from reports._diff import CATEGORIES, ReportDiff, diff_reports
from reports._load import ReportFormatError, from_data, register_kind
from reports.cli import main

ODD = "enc\u00f6der/<b>&\"q\"|x"


def inspect_report(extra: int = 0, dtype: str = "float32") -> InspectReport:
    tensors = (
        TensorInfo(f"{ODD}/kernel", (3, 3, 8, 16), dtype, "parameter", 4608,
                   stats=TensorStats(-1.5, 2.0, 0.01, 0.5, 0, 0, 0.0)),
        TensorInfo("conv/bias", (16,), "float32", "parameter", 64),
        TensorInfo("conv/kernel/Momentum", (3, 3, 8, 16), "float32", "optimizer_slot", 4608, optimizer="Momentum"),
    ) + tuple(TensorInfo(f"extra/{i}", (2,), "float32", "parameter", 8) for i in range(extra))
    return InspectReport("ckpt/model.ckpt", "tf1-v2", ("model.ckpt.index", "model.ckpt.data-00000-of-00001"),
                         tensors, totals_of(tensors),
                         ArchitectureGuess("resnet_v1_50", 0.9, ("block1/unit_1",), {"depth": 50}),
                         (Finding("warning", "optimizer-slots", "1 slot", "conv/kernel/Momentum"),))


def mapping_report() -> MappingReport:
    return MappingReport(
        "src", "keras:ResNet50", "resnet_v1",
        (MappedTensor(f"{ODD}/kernel", "conv1/kernel:0", "resnet_v1.toml:3", "transpose"),),
        ("global_step",), ("fc/bias:0",),
        (ShapeMismatch("logits/w", "fc/kernel:0", (1, 1, 2048, 1001), (2048, 1000), "resnet_v1.toml:9"),),
        (Ambiguity(("a", "b"), ("c",), "same shape"),),
        dropped={"global_step": "counter"}, warnings=("note",), left_out_target=("fc/kernel:0",),
        initialised={"bn/moving_variance:0": "ones"})


def convert_report(seconds: float = 1.5) -> ConvertReport:
    parity = ParityReport("slim builder", "2 random images", (LayerError("logits", 1e-6, 2e-6),),
                          (LayerError("conv1", 0.0, 0.0),), 1e-4, True, None, None)
    return ConvertReport("src", "out", "keras:ResNet50", "object", mapping_report(), 320,
                         {"ckpt.data-00000-of-00001": "written"}, 0, 1024, seconds, parity)


def zoo_rows() -> list[ZooRow]:
    return [
        ZooRow("a/model.ckpt", "a", "converted", "tf1-v2", "resnet_v1_50", 25_000_000, 100_000_000, "generic",
               320, 0, 0, 2e-7, True, 10.0),
        ZooRow("b/model.ckpt", None, "failed", "tf1-v2", "mobilenet_v1", seconds=1.0, reason="no rule",
               reason_kind="MappingError"),
        ZooRow(ODD, "c", "converted", "h5", None, 10, 40, "keras:X", 1, 0, 0, None, None, 0.5),
        ZooRow("d/model.ckpt", "d", "converted", "tf2", "bert", 100, 400, "generic", 4, 1, 0, 1e-5, True, 3.0,
               finished="2025-01-02T10:00:00+00:00", this_run="reused"),
        ZooRow("e/model.ckpt", "e", "converted", "tf2", "bert", 100, 400, "generic", 4, 0, 0, None, None, 2.0),
    ]


def zoo_report(rows=None) -> ZooReport:
    return ZooReport("/zoo", "/out", tuple(zoo_rows() if rows is None else rows), 2, 17.0)


def diff_report() -> ReportDiff:
    rows = zoo_rows()
    rows[1] = dataclasses.replace(rows[1], status="converted", reason=None, reason_kind=None)
    return diff_reports(zoo_report(), zoo_report(rows), "a.json", "b.json")


def finetune_report():
    from reports._finetune import BestValue, ConfigNote, FinetuneReport, MetricsAt, RestoreSummary, SplitRecords

    return FinetuneReport(
        config="shapes/pipeline.config", model_dir="runs/ssd", task="detection", mode="finetune",
        backbone="keras:MobileNet(alpha=0.5)", num_classes=3, start_step=0, steps=40, seconds=61.5,
        train_seconds=50.2, steps_per_sec=0.8,
        restore=RestoreSummary("legacy/model.ckpt", "tf1-v2", "runs/ssd/converted/ckpt-0", "classification", True, 137, 58),
        final_losses={"total": 3.2, "classification": 2.1, "localization": None},
        metrics_history=(MetricsAt(20, {"mAP@.5": 0.31}), MetricsAt(40, {"mAP@.5": 0.52})),
        best_metric=BestValue("mAP@.5", 0.52, 40), test_split="test", test_metrics={"mAP@.5": 0.5, "mAP": 0.21},
        records=(SplitRecords("train", ("train.tfrecord",), 600, 598, {"bad_box": 2}),),
        findings=(ConfigNote("warning", "unsupported", "train_config.batch_norm_trainable", "ignored", "12:5"),),
        warnings=("validation loss diverges from training loss",))


def validate_report():
    from reports import ConfigNote, ValidateReport

    return ValidateReport(config="zoo/pipeline.config", task="detection", findings=(
        ConfigNote("error", "unsupported_model", "model.faster_rcnn", "the model is not an SSD model", "3:3"),
        ConfigNote("error", "placeholder", "train_input_reader.label_map_path", "still 'PATH_TO_BE_CONFIGURED'",
                   "118:19"),
        ConfigNote("info", "ignored", "eval_config.max_evals", "understood but not used", "125:3")))


def export_report():
    from reports import ExportReport

    return ExportReport(task="detection", source="runs/ssd", checkpoint="runs/ssd/ckpt-600", step=600,
                        out="exported/ssd", input_type="encoded_image_string_tensor",
                        outputs=("detection_boxes", "detection_classes", "detection_scores", "num_detections"),
                        config="runs/ssd/pipeline.config", checked_images=4)


# One example per registered kind: a kind added without an example fails test_every_kind_has_an_example.
EXAMPLES = {"inspect": inspect_report, "map": mapping_report, "convert": convert_report, "zoo": zoo_report,
            "diff": diff_report, "finetune": finetune_report, "validate": validate_report, "export": export_report}


def test_every_kind_has_an_example():
    """Every kind reports ships has an example; other packages (the engine) may register more."""
    from reports._load import _BUILT_IN

    assert {cls.kind for cls in _BUILT_IN} <= set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_round_trip_through_json(kind):
    report = EXAMPLES[kind]()
    data = json.loads(json.dumps(to_data(report)))
    assert next(iter(data)) == "kind" and data["kind"] == kind
    back = from_data(data)
    assert type(back) is type(report) and back == report
    assert to_data(back) == data


def test_nested_values_come_back_typed():
    back = from_data(json.loads(json.dumps(to_data(convert_report()))))
    assert isinstance(back.parity.outputs[0], LayerError) and isinstance(back.mapping.mapped, tuple)
    assert back.mapping.shape_mismatches[0].source_shape == (1, 1, 2048, 1001)
    inspect = from_data(to_data(inspect_report()))
    assert inspect.tensors[1].stats is None  # to_data leaves out absent stats
    assert inspect.totals.by_role["parameter"].tensors == 2


def test_decoder_reports_every_problem_with_its_place():
    data = to_data(zoo_report())
    data["rows"][1]["status"] = 3
    del data["rows"][2]["source"]
    data["rows"][3]["colour"] = "red"
    data["jobs"] = "two"
    with pytest.raises(ReportFormatError) as e:
        from_data(data, source="z.json")
    message = str(e.value)
    assert message.startswith("z.json: not a valid 'zoo' report")
    for part in ("rows[1].status: expected a string, found a number 3", "rows[2]: missing ZooRow field(s) source",
                 "rows[3]: unknown ZooRow field(s) colour", "jobs: expected an integer"):
        assert part in message


def test_unknown_kind_names_the_known_ones():
    with pytest.raises(ReportFormatError, match=r"x\.json: expected a report of a known kind \(convert, diff, "
                                                r"[a-z, -]*inspect, map, [a-z, -]*zoo\), found kind 'prophecy'"):
        from_data({"kind": "prophecy"}, source="x.json")


def test_registry_refuses_duplicates_and_kind_fields():
    @dataclasses.dataclass(frozen=True)
    class Other:
        x: int
        kind = "zoo"

    with pytest.raises(ValueError, match="'zoo' is already registered by ZooReport"):
        register_kind(Other)

    @dataclasses.dataclass(frozen=True)
    class Clash:
        kind: str = "clash"

    with pytest.raises(TypeError, match="field named `kind`"):
        register_kind(Clash)


# -- ckpt-report render -----------------------------------------------------------------------------------------

def write(tmp_path: Path, name: str, report) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(to_data(report), indent=2), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_render_any_kind_in_any_format(tmp_path, capsys, kind, fmt):
    path = write(tmp_path, "r.json", EXAMPLES[kind]())
    assert main(["render", str(path), "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        assert json.loads(out) == json.loads(path.read_text())
    elif fmt == "html":
        assert out.startswith("<!DOCTYPE html>")
    else:
        assert out.strip() and (out.startswith("# ") == (fmt == "markdown"))


def test_render_to_a_file_needs_overwrite_to_replace(tmp_path, capsys):
    path = write(tmp_path, "zoo.json", zoo_report())
    page = tmp_path / "zoo.html"
    assert main(["render", str(path), "--format", "html", "--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8").count("<tr data-row") == len(zoo_rows())
    assert main(["render", str(path), "--format", "html", "-o", str(page)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["render", str(path), "--format", "markdown", "-o", str(page), "--overwrite"]) == 0
    assert page.read_text(encoding="utf-8").startswith("# Zoo /zoo -> /out")
    assert main(["render", str(path), "--format", "markdown", "-o", str(path), "--overwrite"]) == 2
    assert "that is an input report" in capsys.readouterr().err


# -- ckpt-report diff ---------------------------------------------------------------------------------------------

def test_zoo_diff_orders_regressions_first(tmp_path, capsys):
    rows = zoo_rows()
    new = [dataclasses.replace(rows[0], status="failed", output=None, reason="now broken", reason_kind="Boom"),
           dataclasses.replace(rows[1], status="converted", reason=None, reason_kind=None),
           dataclasses.replace(rows[2], this_run="reused", seconds=0.9),  # reused: no change; +0.4 s: below the floor
           dataclasses.replace(rows[3], parity_max_rel=1e-5 + 1e-7, seconds=9.0),  # parity: within 1e-6
           ZooRow("f/new.ckpt", "f", "converted", seconds=1.0), ZooRow("g/new.ckpt", None, "failed", reason="x")]
    a, b = write(tmp_path, "a.json", zoo_report()), write(tmp_path, "b.json", zoo_report(new))
    assert main(["diff", str(a), str(b), "--format", "json"]) == 1  # new failures: exit status 1
    diff = from_data(json.loads(capsys.readouterr().out))
    assert isinstance(diff, ReportDiff)
    got = [(c.category, c.key) for c in diff.changes]
    assert got == [("new failure", "a/model.ckpt"), ("new failure", "g/new.ckpt"), ("fixed", "b/model.ckpt"),
                   ("time", "d/model.ckpt"), ("added", "f/new.ckpt"), ("removed", "e/model.ckpt")]
    assert diff.of("new failure")[0].note == "now broken" and diff.totals_after["failed"] == 2

    assert main(["diff", str(a), str(b), "--format", "markdown"]) == 1
    text = capsys.readouterr().out
    assert text.index("## New failures (2)") < text.index("## Fixed (1)") < text.index("## Added (1)")
    assert "converted: 4 -> 4   failed: 1 -> 2   reused: 1 -> 2" in text


def test_zoo_diff_tolerances():
    rows = zoo_rows()
    new = list(rows)
    new[0] = dataclasses.replace(rows[0], parity_max_rel=5e-5, parity_passed=True, parity_verdict="passed", seconds=10.4)
    new[3] = dataclasses.replace(rows[3], parity_max_rel=2e-4, parity_passed=False, parity_verdict="failed")
    d = diff_reports(zoo_report(), zoo_report(new), parity_tolerance=1e-6)
    assert [(c.key, c.note) for c in d.of("parity")] == [("a/model.ckpt", ""), ("d/model.ckpt", "parity now FAILS")]
    assert not d.of("time")
    loose = diff_reports(zoo_report(), zoo_report(new), parity_tolerance=1e-3)
    assert [c.key for c in loose.of("parity")] == ["d/model.ckpt"]  # a pass/fail flip is always reported


def test_field_diff_of_other_kinds(tmp_path, capsys):
    a = write(tmp_path, "a.json", inspect_report())
    b = write(tmp_path, "b.json", inspect_report(extra=1, dtype="float16"))
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "Changes in inspect report" in out
    diff = diff_reports(inspect_report(), inspect_report(extra=1, dtype="float16"))
    changed = {c.key: (c.before, c.after) for c in diff.of("changed")}
    assert changed[f"tensors[{ODD}/kernel].dtype"] == ("float32", "float16")
    assert changed["totals.tensors"] == ("3", "4")
    assert [c.key for c in diff.of("added")] == ["tensors[extra/0].shape", "tensors[extra/0].dtype",
                                                 "tensors[extra/0].role", "tensors[extra/0].bytes",
                                                 "tensors[extra/0].optimizer", "tensors[extra/0].stats"]
    same = diff_reports(convert_report(1.5), convert_report(1.7))  # time within tolerance
    assert same.changes == () and "no changes" in render(same)
    assert diff_reports(convert_report(1.5), convert_report(9.0)).of("changed")[0].key == "seconds"


def test_categories_render_in_order():
    assert CATEGORIES[:3] == ("new failure", "fixed", "status") and CATEGORIES[-3:] == ("added", "removed", "changed")


# -- bad input: one line, exit 2 -----------------------------------------------------------------------------------

def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "text.json").write_text("not json at all")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "nokind.json").write_text('{"path": "x"}')
    (tmp_path / "future.json").write_text('{"kind": "prophecy"}')
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    zoo, ins = write(tmp_path, "zoo.json", zoo_report()), write(tmp_path, "ins.json", inspect_report())
    t = str(tmp_path)
    return {
        "missing": (["render", f"{t}/nope.json"], "nope.json: No such file or directory"),
        "directory": (["render", t], "Is a directory"),
        "not json": (["render", f"{t}/text.json"], "text.json: not JSON (Expecting value at line 1 column 1)"),
        "not utf-8": (["render", f"{t}/binary.json"], "binary.json: not a UTF-8 text file"),
        "not an object": (["render", f"{t}/list.json"], "list.json: expected a JSON object with a \"kind\" key"),
        "no kind": (["render", f"{t}/nokind.json"], "nokind.json: expected a report of a known kind (convert, diff, "),
        "unknown kind": (["render", f"{t}/future.json"], "found kind 'prophecy'"),
        "two kinds": (["diff", str(zoo), str(ins)], "zoo.json is a 'zoo' report and"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "not json", "not utf-8", "not an object", "no kind",
                                  "unknown kind", "two kinds"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    argv, expected = _bad_inputs(tmp_path)[case]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ckpt-report: error: ") and "Traceback" not in captured.err
    assert expected in lines[0]


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    for argv in (["--debug", "render", str(bad)], ["render", str(bad), "--debug"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "ReportFormatError" in err and "not JSON" in err.splitlines()[-1]


def test_console_script_runs_without_tensorflow(tmp_path):
    path = write(tmp_path, "zoo.json", zoo_report())
    code = ("import sys; from reports.cli import main; rc = main(['render', sys.argv[1], '--format', 'html', "
            "'-o', sys.argv[2]]); assert 'tensorflow' not in sys.modules and 'migrate' not in sys.modules; "
            "sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "z.html")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    script = Path(sys.executable).with_name("ckpt-report")
    if script.exists():  # installed by `make install` (pip install -e .)
        done = subprocess.run([str(script), "render", str(path), "--format", "markdown"], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout.startswith("# Zoo /zoo -> /out")
