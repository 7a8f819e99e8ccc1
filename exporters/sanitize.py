"""Values MLflow accepts that an output format cannot hold, made exportable in one place.

One stored value must never cost a whole export (exports are atomic). Two kinds reach it:

* **Times outside Python's datetime** (years 1-9999). MLflow keeps times as int64 epoch
  milliseconds and accepts any of them (a metric timestamp of 2**63-1 is year 292 million).
  :func:`time_from_ms` clamps such a time to the nearest representable instant and returns
  a :class:`ClampedTime`, which remembers MLflow's integer;
  :func:`exporters.prov_model.mark_clamped_times` then notes it as ``mlflowprov:sanitized``
  on every PROV record holding it, with the raw value, in every format. Metric files keep
  the raw value itself (NetCDF/Zarr seconds, CSV milliseconds).
* **Text XML 1.0 cannot hold** (C0 controls other than tab, newline and carriage return,
  U+FFFE, U+FFFF, lone surrogates): PROV-XML, SVG and Graphviz's parser refuse them.
  :func:`xml_safe_text` writes each as ``\\uXXXX`` and doubles every backslash of the same
  string, so the original stays recoverable; :func:`exporters.prov_model.xml_safe_document`
  applies it to a document and marks each changed record. JSON, PROV-N, Turtle, JSON-LD,
  NetCDF and Zarr carry such text as it is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
TEXT_NOTE = ("characters XML 1.0 cannot hold written as \\uXXXX escapes, backslashes "
             "doubled")


class ClampedTime(datetime):
    """A time MLflow stored beyond datetime's years 1-9999, clamped to the nearest end of
    that range; :attr:`raw_ms` keeps MLflow's own epoch milliseconds."""

    raw_ms: int

    @classmethod
    def of(cls, ms: int) -> ClampedTime:
        bound = LATEST if ms > 0 else EARLIEST
        clamped = cls.combine(bound.date(), bound.timetz())
        clamped.raw_ms = ms
        return clamped


def time_from_ms(ms: int) -> datetime:
    """MLflow's epoch milliseconds as an aware UTC datetime, exactly (no float rounding);
    a :class:`ClampedTime` when the instant is outside years 1-9999."""
    try:
        return EPOCH + timedelta(milliseconds=int(ms))
    except OverflowError:
        return ClampedTime.of(int(ms))


def time_note(name: str, value: ClampedTime) -> str:
    """The ``mlflowprov:sanitized`` text for a clamped time in attribute ``name``."""
    return (f"{name}: MLflow's {value.raw_ms} ms since the Unix epoch is outside years "
            f"1-9999; clamped to {value.isoformat()}")


def xml_unsafe(text: str) -> bool:
    """Whether ``text`` holds a character XML 1.0 cannot hold."""
    return _NOT_XML.search(text) is not None


def xml_safe_text(text: str) -> str:
    """``text`` unchanged when XML 1.0 can hold it, else with each character it cannot hold
    as ``\\uXXXX`` and each backslash doubled (the escaping is then reversible)."""
    if not xml_unsafe(text):
        return text
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text.replace("\\", "\\\\"))
