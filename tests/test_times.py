"""cohortlab.times: the times a user or an export gives, read as one instant (UTC)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cohortlab.errors import SettingsError
from cohortlab.times import parse_time


@pytest.mark.parametrize("text, expected", [
    ("20260301", datetime(2026, 3, 1, tzinfo=timezone.utc)),
    (" 20261231 ", datetime(2026, 12, 31, tzinfo=timezone.utc)),
    ("1772323200", datetime(2026, 3, 1, tzinfo=timezone.utc)),  # epoch seconds stay epoch seconds
    ("1772323200000", datetime(2026, 3, 1, tzinfo=timezone.utc)),
    ("20261301", datetime(1970, 8, 23, 12, 8, 21, tzinfo=timezone.utc)),  # no such date: epoch
])
def test_eight_digits_that_form_a_date_are_that_date(text, expected):
    assert parse_time(text, epoch=True) == expected


def test_without_epoch_eight_digits_are_iso_basic_as_before():
    assert parse_time("20260301") == datetime(2026, 3, 1, tzinfo=timezone.utc)
    with pytest.raises(SettingsError, match="not a time"):
        parse_time("1772323200")


def test_an_eight_digit_integer_that_forms_a_date_is_that_date_too():
    """As a JSON number or a Python int (``Lab.load(..., as_of=20260301)``), as text is."""
    assert parse_time(20260301, epoch=True) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert parse_time(1772323200, epoch=True) == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert parse_time(20261301, epoch=True) == datetime(1970, 8, 23, 12, 8, 21, tzinfo=timezone.utc)
