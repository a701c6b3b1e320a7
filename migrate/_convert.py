"""``convert``: write a TF2 checkpoint from a legacy one, verified, atomically."""
from __future__ import annotations

import json
import time
from pathlib import Path

from reports import ConvertReport, render, to_data

from ._formats import open_checkpoint
from ._formats._bundle import BundleReader, shard_path
from ._formats._bundle_writer import BundleWriter
from ._generic import generic_mapping, source_value, write_generic
from ._select import SelectOptions, select
from ._staging import Staging, write_state_file
from ._verify import verify_against

PREFIX = "ckpt-0"


def convert(source, output, *, options: SelectOptions = SelectOptions(), overwrite: bool = False,
            copy: bool = False) -> ConvertReport:
    """Convert ``source`` to a generic TF2 object-based checkpoint in directory ``output``.

    The output holds a ``checkpoint`` state file, ``ckpt-0.*`` and the
    conversion report (``conversion.json`` / ``.md``).  Nothing appears at
    ``output`` unless every tensor verified.
    """
    started = time.perf_counter()
    with open_checkpoint(source) as reader:
        selection = select(reader.specs(), options)
        with Staging(Path(output), overwrite, inputs=reader.files()) as stage:
            prefix = stage.tmp / PREFIX
            reuse = [] if copy or not isinstance(reader, BundleReader) else reader.files()[1:]
            writer = BundleWriter(prefix, reuse)
            try:
                keys = write_generic(reader, selection, writer)
            except BaseException:
                writer.abort()
                raise
            writer.close()
            write_state_file(stage.tmp, PREFIX)
            verified = _verify_generic(prefix, reader, selection, keys, writer)
            report = ConvertReport(
                source=str(source), output=str(Path(output)), mode="generic", layout="object",
                mapping=generic_mapping(str(source), selection, keys), verified=verified,
                shards=_shard_kinds(prefix, writer), bytes_reused=_reused_bytes(reader, reuse),
                bytes_written=writer.bytes_written, seconds=round(time.perf_counter() - started, 3),
            )
            _write_report(stage.tmp, report)
            stage.commit()
    return report


def _verify_generic(prefix: Path, reader, selection, keys: dict[str, str], writer: BundleWriter) -> int:
    expected, reused = {}, {}
    for key, name in keys.items():
        item = selection.kept[name]
        expected[key] = lambda item=item: source_value(reader, item)
        if writer.reuse and len(item.sources) == 1 and not reader.entry(item.sources[0]).slices:
            reused[key] = item.sources[0]
    with BundleReader(prefix) as written:
        return verify_against(written, expected, reader, reused)


def _shard_kinds(prefix: Path, writer: BundleWriter) -> dict[str, str]:
    kinds = {shard_path(prefix, i, writer.num_shards).name: kind for i, kind in writer.reuse.items()}
    kinds[shard_path(prefix, writer.num_shards - 1, writer.num_shards).name] = "written"
    return kinds


def _reused_bytes(reader, reuse) -> int:
    return sum(Path(p).stat().st_size for p in reuse)


def _write_report(directory: Path, report: ConvertReport) -> None:
    (directory / "conversion.json").write_text(json.dumps(to_data(report), indent=2))
    (directory / "conversion.md").write_text(render(report, "markdown"))
