"""Compaction options: typed parsing of the values a table's `compaction` map holds (numbers,
booleans or the strings CQL maps hold), and the options every strategy accepts.

Each parser returns the typed value or raises InvalidRequest naming the option, its value and
why (`invalid_option`). Strategy-specific options are checked by each strategy's `validate`.
Defaults and rules: docs/compaction.md.
"""
from __future__ import annotations

import math

from engine.errors import InvalidRequest

COMMON_DEFAULTS = {
    "enabled": True,
    "min_threshold": 4,
    "max_threshold": 32,
    "tombstone_threshold": 0.2,
    "tombstone_compaction_interval": 86400,
    "unchecked_tombstone_compaction": False,
}

def invalid_option(name: str, value, why: str) -> InvalidRequest:
    return InvalidRequest(f"compaction option {name}={value!r} is invalid: {why}")


def parse_int(options: dict, name: str, minimum: int) -> int:
    value = options[name]
    if isinstance(value, bool):
        raise invalid_option(name, value, "expected an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise invalid_option(name, options[name], "expected an integer") from None
    if not isinstance(value, int):
        raise invalid_option(name, value, "expected an integer")
    if value < minimum:
        raise invalid_option(name, value, f"must be >= {minimum}")
    return value


def parse_float(options: dict, name: str, minimum: float) -> float:
    value = options[name]
    if isinstance(value, bool):
        raise invalid_option(name, value, "expected a number")
    try:
        value = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise invalid_option(name, options[name], "expected a number") from None
    if not math.isfinite(value):
        raise invalid_option(name, options[name], "must be finite")
    if value < minimum:
        raise invalid_option(name, options[name], f"must be >= {minimum}")
    return value


def parse_bool(options: dict, name: str) -> bool:
    value = options[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid_option(name, value, "expected true or false")


def validate_common(opts: dict) -> None:
    """Check (in place) the options every strategy accepts (CompactionParams, AbstractCompactionStrategy)."""
    opts["enabled"] = parse_bool(opts, "enabled")
    opts["min_threshold"] = parse_int(opts, "min_threshold", 2)
    opts["max_threshold"] = parse_int(opts, "max_threshold", 2)
    if opts["min_threshold"] > opts["max_threshold"]:
        raise invalid_option("min_threshold", opts["min_threshold"],
                   f"cannot be greater than max_threshold ({opts['max_threshold']})")
    opts["tombstone_threshold"] = parse_float(opts, "tombstone_threshold", 0.0)
    opts["tombstone_compaction_interval"] = parse_int(opts, "tombstone_compaction_interval", 0)
    opts["unchecked_tombstone_compaction"] = parse_bool(opts, "unchecked_tombstone_compaction")
