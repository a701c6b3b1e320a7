"""Report data types and their renderers.  Never imports TensorFlow."""
from ._inspect import (
    UNKNOWN, ArchitectureGuess, Finding, InspectReport, RoleTotal, TensorInfo, TensorStats, Totals, totals_of,
)

__all__ = [
    "UNKNOWN", "ArchitectureGuess", "Finding", "InspectReport", "RoleTotal", "TensorInfo", "TensorStats", "Totals",
    "totals_of",
]
from ._render import FORMATS, render, to_data  # noqa: E402

__all__ += ["FORMATS", "render", "to_data"]
from ._convert import (  # noqa: E402
    Ambiguity, ConvertReport, LayerError, MappedTensor, MappingReport, ParityReport, ShapeMismatch, TranslatedConfig,
)
from ._group import group_names  # noqa: E402

__all__ += ["Ambiguity", "ConvertReport", "LayerError", "MappedTensor", "MappingReport", "ParityReport", "TranslatedConfig",
            "ShapeMismatch", "group_names"]
from ._zoo import STATUSES, ZooReport, ZooRow  # noqa: E402

__all__ += ["STATUSES", "ZooReport", "ZooRow"]
from ._diff import ReportDiff, diff_reports  # noqa: E402
from ._html import render_html  # noqa: E402
from ._load import from_data, load_report, register_kind  # noqa: E402

__all__ += ["ReportDiff", "diff_reports", "from_data", "load_report", "register_kind", "render_html"]
from ._finetune import BestValue, ConfigNote, FinetuneReport, MetricsAt, RestoreSummary, SplitRecords  # noqa: E402
from ._finetune import defined as defined_metrics  # noqa: E402
from ._transfer import TransferReport, TransferRun  # noqa: E402

__all__ += ["BestValue", "ConfigNote", "FinetuneReport", "MetricsAt", "RestoreSummary", "SplitRecords",
            "TransferReport", "TransferRun", "defined_metrics"]
from ._validate import ValidateReport  # noqa: E402
from ._export import ExportReport  # noqa: E402

__all__ += ["ExportReport", "ValidateReport"]
from ._quantize import LatencyStat, LayerSparsityRow, QuantizeReport, VariantResult  # noqa: E402

__all__ += ["LatencyStat", "LayerSparsityRow", "QuantizeReport", "VariantResult"]
from ._format import human_bytes, human_count  # noqa: E402
from ._mplcache import private_matplotlib_cache  # noqa: E402

__all__ += ["human_bytes", "human_count", "private_matplotlib_cache"]
