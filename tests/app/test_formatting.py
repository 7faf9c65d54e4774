"""Numbers as a person reads them: one unit, never a float exponent glued to a suffix."""

from __future__ import annotations

import pytest

from app.formatting import count_text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (7, "7"),
        (999, "999"),
        (1_000, "1k"),
        (12_345, "12.3k"),
        (999_499, "999k"),
        (999_999, "1M"),  # was "1e+03k"
        (999_999_999, "1G"),
        (4_200_000, "4.2M"),
        (-999_999, "-1M"),
        (999.6, "1k"),  # was "1e+03"
        (0.25, "0.25"),
        (None, "—"),
    ],
)
def test_counts_round_before_choosing_the_unit(value, shown):
    assert count_text(value) == shown


def test_no_count_is_written_with_an_exponent():
    for exponent in range(0, 16):
        for mantissa in (1, 9.995, 9.9999):
            text = count_text(mantissa * 10**exponent)
            assert "e+" not in text and "e-" not in text, (mantissa, exponent, text)
