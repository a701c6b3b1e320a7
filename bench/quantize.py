"""The ``ckpt-quantize`` acceptance ratios, measured in one run on the fixture models; prints JSON.

Flow: the ``mobilenet_v1_shapes_legacy`` TF1 checkpoint (MobileNet v1 0.5,
128x128) fine-tuned on ``classify_shapes`` with ``finetune.finetune`` (cached
in ``--work``), then pruned to 50% (PolynomialDecay), QAT, prune + QAT
(sparsity-preserving), exported (float32, dynamic, int8 full integer with int8
I/O, float16, pruned, pruned+int8, QAT int8, prune+QAT int8) and evaluated on
the test split (100 images) with LiteRT: median latency over ``--runs`` runs
at 1 and 2 threads.

Targets (issue 6): int8 size <= 0.30x float32; int8 drop <= 2 points; int8
latency <= 0.7x float; pruned gzip <= 0.65x dense gzip, drop <= 2 points;
pruned+int8 gzip <= 0.2x float gzip; QAT int8 drop <= PTQ int8 drop.

Detection (issue 12, ``--detection-steps N`` > 0): the demo's SSD (MobileNet v1 0.5, 128x128, from the
same legacy checkpoint) fine-tuned on ``detection_shapes`` for N steps, exported to float32 and int8
``.tflite`` and scored with COCO mAP@0.5 on the test split beside the float model in TensorFlow: both
gaps in points and as ratios to TensorFlow.  Targets: float32 within 1 point, int8 within 2.

Usage: python bench/quantize.py [--work .cache/bench-quantize] [--finetune-steps 60] [--prune-steps 200]
                                [--qat-steps 100] [--runs 100] [--detection-steps 600] [--fresh]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))


def _flags(shapes: Path) -> dict:
    return {"feature_extractor": "mobilenet_v1", "depth_multiplier": 0.5, "image_size": 128,
            "label_map_path": str(shapes / "label_map.pbtxt"), "train_input_path": str(shapes / "train.record"),
            "eval_input_path": str(shapes / "val.record"), "batch_size": 16}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=REPO / ".cache" / "bench-quantize")
    p.add_argument("--finetune-steps", type=int, default=60)
    p.add_argument("--prune-steps", type=int, default=200)
    p.add_argument("--qat-steps", type=int, default=100)
    p.add_argument("--prune-qat-steps", type=int, default=60)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--fresh", action="store_true", help="delete --work first (no cached fine-tune)")
    p.add_argument("--per-tensor", action="store_true", help="int8 variants with one scale per tensor")
    p.add_argument("--detection-steps", type=int, default=600, help="SSD fine-tuning steps (0: no detection part)")
    args = p.parse_args(argv)

    import fixtures
    import finetune
    import quantize

    started = time.perf_counter()
    data = fixtures.build(Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures"),
                          names=["classify_shapes", "mobilenet_v1_shapes_legacy"])
    shapes, legacy = data["classify_shapes"], data["mobilenet_v1_shapes_legacy"]
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    work = args.work
    flags = _flags(shapes)
    ft_dir = work / "finetune"
    if not (ft_dir / "finetune-report.json").is_file():
        finetune.finetune(model_dir=ft_dir, task="classification", fine_tune_checkpoint=str(legacy),
                          num_steps=args.finetune_steps, learning_rate=1e-3,
                          test_input_path=str(shapes / "test.record"), **flags)
    timings = {}
    t = time.perf_counter()
    task = quantize.load("classification", model_dir=ft_dir, test_input_path=str(shapes / "test.record"), **flags)
    for name in ("prune", "qat", "prune_qat", "export"):
        shutil.rmtree(work / name, ignore_errors=True)
    pruned = quantize.prune(task, work / "prune", steps=args.prune_steps, learning_rate=1e-4,
                            config=quantize.PruneConfig(0.5, "polynomial"))
    timings["prune_s"], t = round(time.perf_counter() - t, 1), time.perf_counter()
    qat = quantize.qat(task, work / "qat", steps=args.qat_steps, learning_rate=1e-5)
    timings["qat_s"], t = round(time.perf_counter() - t, 1), time.perf_counter()
    prune_qat = quantize.qat(task, work / "prune_qat", steps=args.prune_qat_steps, learning_rate=1e-5,
                             model=pruned.model, preserve_sparsity=True)
    timings["prune_qat_s"], t = round(time.perf_counter() - t, 1), time.perf_counter()
    quantize.export(task, work / "export", pruned=pruned, qat=qat, prune_qat=prune_qat, int8_io=True,
                    per_channel=not args.per_tensor)
    timings["export_s"], t = round(time.perf_counter() - t, 1), time.perf_counter()
    report = quantize.evaluate(task, work / "export", runs=args.runs, threads=(1, 2))
    timings["eval_s"] = round(time.perf_counter() - t, 1)
    result = _ratios(report, timings, time.perf_counter() - started, args.per_tensor)
    if args.detection_steps:
        result["detection"] = _detection_gaps(work / "detection", args.detection_steps, args.runs)
    print(json.dumps(result, indent=2))
    return 0


def _detection_gaps(work: Path, steps: int, runs: int) -> dict:
    """The SSD's mAP@0.5 in TensorFlow and as float32 / int8 ``.tflite`` (see the module docstring)."""
    import fixtures
    import finetune
    import quantize

    shapes = fixtures.build(Path(os.environ.get("CKPTKIT_FIXTURES") or REPO / ".cache" / "fixtures"),
                            names=["detection_shapes"])["detection_shapes"]
    run, config, test = work / "run", shapes / "pipeline.config", [str(shapes / "test.record")]
    if not (run / "finetune-report.json").is_file():
        finetune.finetune(config, model_dir=run, task="detection", num_steps=steps, test_input_path=test)
    task = quantize.load("detection", model_dir=run, config_path=config, test_input_path=test)
    shutil.rmtree(work / "export", ignore_errors=True)
    quantize.export(task, work / "export", variants=("float32", "int8"))
    report = quantize.evaluate(task, work / "export", runs=runs, threads=(1, 2))
    in_tf = report.tensorflow_metrics["mAP@0.5"]
    out = {"steps": steps, "tensorflow_mAP@0.5": in_tf}
    for name in ("float32", "int8"):
        v = report.variant(name)
        out[f"{name}_mAP@0.5"] = v.metrics["mAP@0.5"]
        out[f"{name}_gap_points_vs_tensorflow"] = v.drop_vs_tensorflow
        out[f"{name}_ratio_to_tensorflow"] = round(v.metrics["mAP@0.5"] / in_tf, 4) if in_tf else None
    out["int8_gap_points_vs_float32_tflite"] = report.variant("int8").drop_points
    out["targets_met"] = {"float32_within_1_point": abs(out["float32_gap_points_vs_tensorflow"]) <= 1.0,
                          "int8_within_2_points": out["int8_gap_points_vs_tensorflow"] <= 2.0}
    return out


def _ratios(report, timings: dict, seconds: float, per_tensor: bool = False) -> dict:
    v = report.variant
    f32, int8, pruned, pruned_int8 = v("float32"), v("int8"), v("pruned"), v("pruned_int8")
    qat, prune_qat = v("qat_int8"), v("prune_qat_int8")
    measured = {
        "float32_accuracy": f32.metrics["accuracy"],
        "int8_size_ratio": int8.size_ratio,
        "int8_drop_points": int8.drop_points,
        "int8_latency_ratio_1thread": int8.latency_ratio.get("1"),
        "int8_latency_ratio_2threads": int8.latency_ratio.get("2"),
        "pruned_gzip_ratio_vs_dense_gzip": pruned.gzip_ratio,
        "pruned_drop_points": pruned.drop_points,
        "pruned_measured_sparsity": pruned.sparsity,
        "pruned_int8_gzip_ratio_vs_float_gzip": pruned_int8.gzip_ratio,
        "pruned_int8_drop_points": pruned_int8.drop_points,
        "qat_int8_drop_points": qat.drop_points,
        "ptq_int8_drop_points": int8.drop_points,
        "prune_qat_int8_drop_points": prune_qat.drop_points,
        "prune_qat_int8_sparsity": prune_qat.sparsity,
        "float32_latency_ms_1thread": next(s.median_ms for s in f32.latency if s.threads == 1),
        "int8_latency_ms_1thread": next(s.median_ms for s in int8.latency if s.threads == 1),
    }
    checks = {
        "int8_size_ratio<=0.30": measured["int8_size_ratio"] <= 0.30,
        "int8_drop<=2": measured["int8_drop_points"] <= 2,
        "int8_latency_ratio<=0.7": measured["int8_latency_ratio_1thread"] <= 0.7,
        "pruned_gzip_ratio<=0.65": measured["pruned_gzip_ratio_vs_dense_gzip"] <= 0.65,
        "pruned_drop<=2": measured["pruned_drop_points"] <= 2,
        "pruned_int8_gzip_ratio<=0.2": measured["pruned_int8_gzip_ratio_vs_float_gzip"] <= 0.2,
        "qat_drop<=ptq_drop": measured["qat_int8_drop_points"] <= measured["ptq_int8_drop_points"],
    }
    return {"measured": measured, "targets_met": checks, "all_met": all(checks.values()),
            "int8_scales": "per-tensor" if per_tensor else "per-channel", "interpreter": report.interpreter, "test_examples": report.examples, "latency_runs": report.variants[0]
            .latency[0].runs, "timings": timings, "seconds": round(seconds, 1), "report": report.export_dir}


if __name__ == "__main__":
    sys.exit(main())
