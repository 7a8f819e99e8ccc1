"""The one policy for values a format cannot hold (exporters/sanitize.py), over any input.

Text: whatever MLflow stores, the escaped form is accepted by a real XML parser and Graphviz
reads a label made of it, and the original is recovered from it exactly. Times: every int64
millisecond value becomes a datetime PROV can serialise, exact inside years 1-9999 and
clamped with its raw value kept outside.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from exporters.sanitize import ClampedTime, time_from_ms, xml_safe_text, xml_unsafe

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_ESCAPE = re.compile(r"\\\\|\\u([0-9a-f]{4})")


def unescape(text: str) -> str:
    """The inverse the module docstring promises: ``\\\\`` -> ``\\``, ``\\uXXXX`` -> char."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else "\\", text)


@pytest.mark.slow  # 300 generated texts, each through lxml twice (seconds)
@settings(max_examples=300, deadline=None)
@given(st.text())
def test_escaped_text_parses_as_xml_and_round_trips(text):
    safe = xml_safe_text(text)
    element = etree.Element("v")
    element.text = safe  # lxml refuses any string XML 1.0 cannot hold
    assert (etree.fromstring(etree.tostring(element)).text or "") == safe
    if xml_unsafe(text):
        assert unescape(safe) == text
    else:
        assert safe is text  # XML-safe text is never touched


def test_every_c0_control_and_nul_is_escaped_visibly():
    assert xml_safe_text("a\x00b\x1f\\c\t\n") == "a\\u0000b\\u001f\\\\c\t\n"
    assert xml_safe_text("C:\\path") == "C:\\path"  # nothing to escape: backslashes stay


@given(INT64)
def test_every_int64_time_becomes_a_serialisable_datetime(ms):
    value = time_from_ms(ms)
    assert value.tzinfo is UTC or value.utcoffset() == timedelta(0)
    datetime.fromisoformat(value.isoformat())
    if isinstance(value, ClampedTime):
        assert value.raw_ms == ms
        assert value.year in (1, 9999)
    else:
        exact = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        assert value == exact


def test_times_at_the_edges():
    assert time_from_ms(0).isoformat() == "1970-01-01T00:00:00+00:00"
    assert time_from_ms(-1).isoformat() == "1969-12-31T23:59:59.999000+00:00"
    assert time_from_ms(2**63 - 1).isoformat() == "9999-12-31T23:59:59.999999+00:00"
    assert time_from_ms(-(2**63)).isoformat() == "0001-01-01T00:00:00+00:00"
