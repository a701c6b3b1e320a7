"""Reading OD API ``pipeline.config`` files (protobuf text format) into typed settings.

    >>> from finetune.config import load_pipeline_config, overrides
    >>> cfg = load_pipeline_config("pipeline.config")            # doctest: +SKIP
    >>> cfg = overrides(cfg, batch_size=8, num_steps=500)          # doctest: +SKIP
    >>> cfg.model.num_classes, cfg.input_files("train")            # doctest: +SKIP

No TensorFlow and no protobuf runtime: the text parser and the schema (the
dataclasses in ``_pipeline`` / ``_ssd_schema``) are plain Python.
"""
from . import _pipeline as schema
from ._pipeline import PipelineConfig as PipelineConfig
from ._read import ConfigError as ConfigError
from ._read import Finding as Finding
from ._read import load_pipeline_config as load_pipeline_config
from ._read import read_pipeline_config as read_pipeline_config
from ._read import setting as setting
from ._resolve import flag_hint as flag_hint
from ._resolve import input_files as input_files
from ._resolve import overrides as overrides
from ._resolve import resolve_path as resolve_path
from ._ssd_schema import SSD as SSD
from migrate.textproto import Message as Message
from migrate.textproto import TextProtoError as TextProtoError
from migrate.textproto import format_text as format_text
from migrate.textproto import parse_file as parse_file
from migrate.textproto import parse_text as parse_text
from migrate.textproto import replace as replace_field

__all__ = [
    "SSD", "ConfigError", "Finding", "Message", "PipelineConfig", "TextProtoError", "flag_hint", "format_text",
    "input_files",
    "load_pipeline_config", "overrides", "parse_file", "parse_text", "read_pipeline_config", "replace_field",
    "resolve_path", "schema", "setting",
]
