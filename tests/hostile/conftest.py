"""Per-case wall time and peak memory of the hostile corpus, summed up at the end of the run.

The table goes to the terminal; every case's numbers go to .cache/hostile/cases.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

RECORD = Path(__file__).resolve().parents[2] / ".cache" / "hostile" / "cases.json"
DATA_SETS = ("detection_shapes", "classify_shapes")  # fixture data sets the finetune and quantize cases copy


class _Zoo(dict):
    """The fixture zoo, plus entries built on first use: the data sets, and ``quantize_tiny`` (a small tf_keras
    classifier, its TFRecords and a float32 export, built once per session by a subprocess)."""

    def __init__(self, entries: dict, zoo_dir: Path, scratch):
        super().__init__(entries)
        self._zoo_dir, self._scratch = zoo_dir, scratch

    def __missing__(self, name: str) -> Path:
        import fixtures  # noqa: PLC0415

        if name in DATA_SETS:
            self[name] = fixtures.build(self._zoo_dir, names=[name])[name]
        elif name == "quantize_tiny":
            from ._cases_quantize import build_base  # noqa: PLC0415

            self[name] = build_base(self._scratch() / "quantize_tiny", self[DATA_SETS[1]])
        else:
            raise KeyError(name)
        return self[name]


@pytest.fixture(scope="session")
def zoo(zoo_dir, tmp_path_factory) -> dict[str, Path]:
    """tests/conftest.py's ``zoo``, with the lazily built entries of :class:`_Zoo`."""
    import fixtures  # noqa: PLC0415

    entries = {name: fixtures.entry_path(zoo_dir, name) for name in fixtures.NAMES}
    return _Zoo(entries, zoo_dir, lambda: tmp_path_factory.mktemp("hostile-bases"))

MEASURED: dict[str, tuple[float, int]] = {}  # case -> (seconds, peak RSS bytes)
OUTCOMES: dict[str, str] = {}  # case -> passed / failed / xfailed / ...


@pytest.fixture
def measure():
    """``measure(case, result)`` records one run (the slowest and largest are reported)."""

    def record(name: str, result) -> None:
        seconds, rss = MEASURED.get(name, (0.0, 0))
        MEASURED[name] = (max(seconds, result.seconds), max(rss, result.max_rss))

    return record


FUZZED: dict[str, int] = {}  # fuzz target -> inputs tried


@pytest.fixture
def fuzz_log():
    def record(target: str, runs: int) -> None:
        FUZZED[target] = FUZZED.get(target, 0) + runs

    return record


def pytest_runtest_logreport(report):
    if "test_case[" in report.nodeid and (report.when == "call" or report.outcome != "passed"):
        name = report.nodeid.rsplit("[", 1)[1].rstrip("]")
        outcome = "xfailed" if hasattr(report, "wasxfail") and report.outcome == "skipped" else report.outcome
        if OUTCOMES.get(name) in (None, "passed"):
            OUTCOMES[name] = outcome


def pytest_terminal_summary(terminalreporter):
    if FUZZED:
        terminalreporter.write_sep("-", "fuzzing (atheris)")
        for target, runs in FUZZED.items():
            terminalreporter.write_line(f"{target:<14} {runs:>10,} inputs")
    if not OUTCOMES:
        return
    counts: dict[str, int] = {}
    for outcome in OUTCOMES.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    rows = [("cases tried", str(len(OUTCOMES)))] + [(k, str(v)) for k, v in sorted(counts.items())]
    if MEASURED:
        slow = max(MEASURED, key=lambda k: MEASURED[k][0])
        big = max(MEASURED, key=lambda k: MEASURED[k][1])
        rows += [("slowest case", f"{MEASURED[slow][0]:.2f} s  {slow}"),
                 ("most memory", f"{MEASURED[big][1] / 2**20:.0f} MB peak RSS  {big}"),
                 ("total command time", f"{sum(s for s, _ in MEASURED.values()):.1f} s")]
    terminalreporter.write_sep("-", "hostile corpus")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        terminalreporter.write_line(f"{key:<{width}}  {value}")
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps({name: {"outcome": outcome, "seconds": round(MEASURED.get(name, (0, 0))[0], 3),
                                         "peak_rss_bytes": MEASURED.get(name, (0, 0))[1]}
                                  for name, outcome in sorted(OUTCOMES.items())}, indent=1))
    terminalreporter.write_line(f"{'per case':<{width}}  {RECORD}")
