"""Corpus: rule files, zoo manifests, zoo directories and state, and report JSON for ckpt-report."""
from __future__ import annotations

import json
import os
import shutil

from ._case import case

BASE = "mobilenet_v1_small"
MAP = "ckpt-migrate map {in}/model.ckpt --target auto --rules {in}/rules.toml"
RULES = r"rules\.toml(:\d+)?: "


def _rules(box, text: str | bytes) -> None:
    (box.inp / "rules.toml").write_bytes(text if isinstance(text, bytes) else text.encode())


# -- rule files -------------------------------------------------------------------------------
@case("rules", BASE, MAP, RULES + r"not valid TOML")
def rules_not_toml(box):
    _rules(box, "[[rule]\nsource = 'x'\n")


@case("rules", BASE, MAP, RULES + r"not UTF-8 text")
def rules_not_utf8(box):
    _rules(box, b"name = '\xff\xfe'\n")


@case("rules", BASE, MAP, RULES + r"not valid TOML: values nested too deeply")
def rules_deeply_nested(box):
    _rules(box, "a = " + "[" * 5000 + "]" * 5000 + "\n")


@case("rules", BASE, MAP, RULES + r"invalid regular expression '\(\?P<': ")
def rules_bad_regex(box):
    _rules(box, "[[rule]]\nsource = '(?P<'\ntarget = 'x'\n")


@case("rules", BASE, MAP, RULES + r"rule has no target")
def rules_rule_without_target(box):
    _rules(box, "[[rule]]\nsource = '^MobilenetV1/'\n")


@case("rules", BASE, MAP, RULES + r"unknown transform 'explode\(\)'")
def rules_unknown_transform(box):
    _rules(box, "[[rule]]\nsource = '^x'\ntarget = 'y'\ntransform = ['explode()']\n")


@case("rules", BASE, MAP, RULES + r"part 'everything' is not one of backbone, head, detection")
def rules_bad_part(box):
    _rules(box, "[[rule]]\nsource = '^x'\ntarget = 'y'\npart = 'everything'\n")


@case("rules", BASE, MAP, RULES + r"'rule' must be an array of tables \(\[\[rule\]\]\), not a string")
def rules_table_of_wrong_type(box):
    _rules(box, "rule = 'source -> target'\n")


@case("rules", BASE, MAP, RULES + r"rule\.source must be a string, not an integer")
def rules_value_of_wrong_type(box):
    _rules(box, "[[rule]]\nsource = 5\ntarget = 'y'\n")


@case("rules", BASE, MAP, RULES + r"init\.value must be a number, not a string")
def rules_init_value_not_number(box):
    _rules(box, "[[init]]\ntarget = 'bias$'\nvalue = 'zero'\n")


@case("rules", BASE, MAP, RULES + r"derive\.width must be a table with tensor and axis")
def rules_derive_wrong_shape(box):
    _rules(box, "[derive]\nwidth = 3\n")


@case("rules", BASE, "ckpt-migrate map {in}/model.ckpt --target auto --rules {in}/missing.toml",
      r"missing\.toml: No such file or directory")
def rules_missing(box):
    pass


# -- zoo manifests -------------------------------------------------------------------------------
ZOO = "ckpt-migrate zoo {in}/zoo --out {out}/zoo --jobs 1 --manifest {in}/"
MANIFEST = r"m\.(jsonl|csv)(:\d+)?: "


def _zoo(box, manifest: str, text: str | bytes) -> None:
    (box.inp / "zoo").mkdir(exist_ok=True)
    (box.inp / manifest).write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape"))


@case("manifest", None, ZOO + "m.jsonl", MANIFEST + r"not a JSON object")
def manifest_not_json(box):
    _zoo(box, "m.jsonl", '{"source": "a",\n')


@case("manifest", None, ZOO + "m.jsonl", MANIFEST + r"expected a JSON object with source, target, options")
def manifest_line_not_object(box):
    _zoo(box, "m.jsonl", '["a", "b"]\n')


@case("manifest", None, ZOO + "m.jsonl", MANIFEST + r"source must be a string, not int")
def manifest_source_not_string(box):
    _zoo(box, "m.jsonl", '{"source": 5}\n')


@case("manifest", None, ZOO + "m.jsonl", MANIFEST + r"options must be an object of KEY: VALUE, not str")
def manifest_options_not_object(box):
    _zoo(box, "m.jsonl", '{"source": "a", "options": "use_ema"}\n')


@case("manifest", None, ZOO + "m.jsonl", MANIFEST + r"no source")
def manifest_without_source(box):
    _zoo(box, "m.jsonl", '{"target": "generic"}\n')


@case("manifest", None, ZOO + "m.jsonl", MANIFEST + r"not a JSON object \(.*\)")
def manifest_deeply_nested(box):
    _zoo(box, "m.jsonl", "[" * 100000 + "]" * 100000 + "\n")


@case("manifest", None, ZOO + "m.csv", MANIFEST + r"CSV header must name a 'source' column")
def manifest_csv_without_source(box):
    _zoo(box, "m.csv", "path,target\na,generic\n")


@case("manifest", None, ZOO + "m.csv", MANIFEST + r"not a readable CSV manifest \(field larger than field limit")
def manifest_csv_huge_field(box):
    _zoo(box, "m.csv", "source\n" + "x" * 200_000 + "\n")


@case("manifest", None, ZOO + "m.csv", MANIFEST + r"unknown option\(s\) run_shell")
def manifest_unknown_option(box):
    _zoo(box, "m.csv", "source,target,options\na,,run_shell=1\n")


@case("manifest", None, ZOO + "m.csv", MANIFEST + r"option 'use_ema' is not KEY=VALUE")
def manifest_option_not_key_value(box):
    _zoo(box, "m.csv", "source,target,options\na,,use_ema\n")


@case("manifest", None, ZOO + "m.csv", MANIFEST + r"cannot read the manifest")
def manifest_not_utf8(box):
    _zoo(box, "m.csv", b"source\n\xff\xfe\n")


@case("manifest", None, ZOO + "m.csv", MANIFEST + r"cannot read the manifest")
def manifest_is_directory(box):
    _zoo(box, "placeholder", "")
    (box.inp / "m.csv").mkdir()


@case("manifest", None, ZOO + "m.csv", r"m\.csv:3: source 'a' is listed twice \(line 2\)")
def manifest_duplicate_source(box):
    _zoo(box, "m.csv", "source\na\na\n")


@case("manifest", None, ZOO + "m.jsonl", None, exit=1, stdout=r"checkpoints: 5 +converted: 0 +failed: 5")
def manifest_hostile_sources(box):
    """../, absolute, NUL, non-UTF-8 and lone-surrogate sources: each fails as an item; nothing is written outside OUT."""
    rows = ["../../../../etc/passwd", "/etc/shadow", "a\x00b", "\udcff\udcfe", "\ud800"]
    _zoo(box, "m.jsonl", "".join(json.dumps({"source": s}) + "\n" for s in rows))


# -- zoo directories, output directories and state -------------------------------------------
@case("zoo", None, "ckpt-migrate zoo {in}/nothing --out {out}/zoo", r"nothing: not a directory")
def zoo_source_missing(box):
    pass


@case("zoo", None, "ckpt-migrate zoo {in} --out {out}/zoo", r"zoo: (File exists|Not a directory)")
def zoo_output_is_a_file(box):
    (box.out / "zoo").write_text("a file")


@case("zoo", None, "ckpt-migrate zoo {in} --out {out}", r"\.ckptkit-zoo-state\.json: state file is corrupt")
def zoo_state_not_json(box):
    (box.out / ".ckptkit-zoo-state.json").write_text("{ half a state")


@case("zoo", None, "ckpt-migrate zoo {in} --out {out}", r"\.ckptkit-zoo-state\.json: state file is corrupt")
def zoo_state_wrong_shape(box):
    (box.out / ".ckptkit-zoo-state.json").write_text('[{"items": 1}]')


@case("zoo", None, "ckpt-migrate zoo {in} --out {out}", r"\.ckptkit-zoo-state\.json: state file is corrupt")
def zoo_state_items_wrong_shape(box):
    (box.out / ".ckptkit-zoo-state.json").write_text('{"version": 1, "items": {"a": {"row": 3}}}')


@case("zoo", None, "ckpt-migrate zoo {in} --out {out}", r"\.ckptkit-zoo\.lock: Is a directory")
def zoo_lock_is_directory(box):
    (box.out / ".ckptkit-zoo.lock").mkdir()


@case("zoo", None, "ckpt-migrate zoo {in} --out {in}/out", r"output directory is inside the zoo directory")
def zoo_output_inside_source(box):
    pass


@case("zoo", None, "ckpt-migrate zoo {in} --out {out}", None, exit=0, stdout=r"checkpoints: 0")
def zoo_symlinks_out_of_tree(box):
    """Symbolic links to a checkpoint, a directory and / outside the zoo are not followed."""
    os.symlink("/", box.inp / "root")
    os.symlink(box.root / "home", box.inp / "home")
    os.symlink("/etc/passwd", box.inp / "model.ckpt.index")


@case("zoo", "keras_h5", "ckpt-migrate zoo {in} --out {out} --jobs 1 --format json", None, exit=0,
      stdout=r'"converted": 5')
def zoo_hostile_names(box):
    """Names with newlines, leading dots and dashes, non-UTF-8 bytes and 250 characters convert inside OUT."""
    names = ["line\nbreak.h5", "..hidden.h5", "-rf.h5", os.fsdecode(b"\xff\xfe.h5"), "x" * 246 + ".h5"]
    for name in names:
        shutil.copy(box.inp / "weights.h5", os.path.join(box.inp, name))
    (box.inp / "weights.h5").unlink()


# -- report JSON (ckpt-report) ----------------------------------------------------------------
RENDER = "ckpt-report render {in}/r.json"
REPORT = r"r\.json: "


def _report(box, text: str | bytes) -> None:
    (box.inp / "r.json").write_bytes(text if isinstance(text, bytes) else text.encode())


def _real_report(box) -> dict:
    """What ``ckpt-migrate inspect --format json`` writes for the copy in IN."""
    import migrate  # noqa: PLC0415
    from reports import to_data  # noqa: PLC0415

    return to_data(migrate.inspect(box.inp))


@case("report", None, RENDER, REPORT + r"not JSON")
def report_not_json(box):
    _report(box, "{'kind': 'inspect'}")


@case("report", BASE, RENDER, REPORT + r"not JSON")
def report_truncated(box):
    _report(box, json.dumps(_real_report(box))[:5000])


@case("report", None, RENDER, REPORT + r"not a UTF-8 text file")
def report_not_utf8(box):
    _report(box, b'{"kind": "\xff"}')


@case("report", None, RENDER, REPORT + r"expected a JSON object with a \"kind\" key, found")
def report_not_object(box):
    _report(box, "[1, 2, 3]")


@case("report", None, RENDER, REPORT + r"expected a report of a known kind .* found kind 'pickle'")
def report_unknown_kind(box):
    _report(box, '{"kind": "pickle", "data": "gASVAAAAAAAAAAB9lC4="}')


@case("report", BASE, RENDER, REPORT + r".*totals")
def report_field_of_wrong_type(box):
    data = _real_report(box)
    data["totals"] = "lots"
    _report(box, json.dumps(data))


@case("report", None, RENDER, REPORT + r"nested too deeply|not JSON")
def report_deeply_nested(box):
    _report(box, "[" * 100000 + "]" * 100000)


@case("report", None, RENDER, REPORT + r"not JSON|too (long|large)")
def report_huge_integer(box):
    _report(box, '{"kind": "inspect", "x": ' + "1" * 5000 + "}")


@case("report", BASE, "ckpt-report diff {in}/r.json {in}/z.json", r"is a 'inspect' report and .* a 'zoo' report")
def report_diff_different_kinds(box):
    _report(box, json.dumps(_real_report(box)))
    (box.inp / "z.json").write_text(json.dumps({"kind": "zoo", "source": "a", "output": "b", "rows": [], "jobs": 1,
                                                "seconds": 0.0}))


@case("report", BASE, RENDER + " --output {in}/r.json --overwrite", r"--output .*r\.json: that is an input report")
def report_output_onto_input(box):
    _report(box, json.dumps(_real_report(box)))

