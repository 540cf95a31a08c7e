"""CSV import: every column whose header contains "email" becomes a field named after it."""

from __future__ import annotations

import pytest

from mailroom.crm.csv_import import email_field_name


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email", "main"),
        ("E-mail Address", "main"),
        ("Primary Email", "main"),
        ("Secondary Email", "secondary"),
        ("assistant_email", "assistant"),
        ("Email 2", "email_2"),
        ("Work email", "work"),
    ],
)
def test_email_columns_are_fields_named_after_the_column(header: str, field: str) -> None:
    assert email_field_name(header) == field
