"""Coverage-guided fuzzing of ckptkit's native readers with atheris (libFuzzer for Python).

    python -m tests.hostile.fuzz TARGET [libFuzzer flags]     # from the repository root
    python -m tests.hostile.fuzz --list

Seeds come from the real fixtures (``CKPTKIT_FIXTURES`` or ``.cache/fixtures``).
A crash prints the input's traceback and writes it to ``-artifact_prefix``; add
it to ``REGRESSIONS`` below, give it a corpus case when the command line can
reach it, and fix the reader.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# Inputs fuzzing crashed on (target -> inputs, minimized by hand where the original was large); every run
# replays them first.  Each was fixed in migrate/ and, where the command line reaches it, is a corpus case.
REGRESSIONS: dict[str, list[bytes]] = {
    # dtype enum 2**63-1: dtype_name recursed once per 100 (RecursionError); corpus index_dtype_enum_huge
    "bundle": [b"\x08\xff\xff\xff\xff\xff\xff\xff\x00 \xe0\x0f(\x80\x045T\x06\xe1\x96"],
    # the same in V1 metadata; corpus v1_dtype_enum_huge
    "v1_metadata": [b"\n\x10\n\x0e\n\x01a\x18\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"],
    "tensor_proto": [
        b"\x03\x01\x00:\x02\x80\x02",  # 256 as a uint8: OverflowError; corpus v1_value_overflows_dtype
        b"\x01\x01\x005\x00\x00\x80?",  # double_val with a 4-byte wire type: numpy's view ValueError
        b"\x07\x01\x00J\x04\x00\x00\x80?",  # complex64 from one float: numpy's view ValueError
        b"\x0e\x01\x00",  # a resource tensor: AttributeError on its missing numpy dtype; corpus v1_resource_dtype
    ],
    # a child reference whose node id is bytes: int(memoryview) ValueError/TypeError (not reachable from the CLI:
    # only a checkpoint ckptkit itself wrote has its object graph decoded)
    "object_graph": [b"\n\x05\n\x03\n\x01x"],
    # a 90-byte non-UTF-8 name: the file system's ENAMETOOLONG escaped pathlib; corpus state_name_too_long
    "state_file": [b'model_checkpoint_path:"' + b"\xff" * 90 + b'm2"'],
}


def main(argv: list[str]) -> int:
    import atheris  # noqa: PLC0415 - only the fuzzing process needs it

    if not argv or argv[0] == "--list":
        with atheris.instrument_imports():
            from . import _fuzz_targets  # noqa: PLC0415
        print("\n".join(_fuzz_targets.TARGETS))
        return 0
    target, flags = argv[0], argv[1:]
    with atheris.instrument_imports(include=["migrate", "finetune"]):
        from . import _fuzz_targets  # noqa: PLC0415
    if target not in _fuzz_targets.TARGETS:
        print(f"unknown fuzz target {target!r}; known: {', '.join(_fuzz_targets.TARGETS)}", file=sys.stderr)
        return 2
    for data in REGRESSIONS.get(target, []):
        _fuzz_targets.call(target, data)
    seed_dir = Path(tempfile.mkdtemp(prefix=f"seeds-{target}-", dir=_fuzz_targets._SCRATCH))
    for i, data in enumerate(_fuzz_targets.seeds(target) + REGRESSIONS.get(target, [])):
        (seed_dir / f"seed-{i}").write_bytes(data)
    atheris.Setup([sys.argv[0], *flags, str(seed_dir)], lambda data: _fuzz_targets.call(target, data))
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
