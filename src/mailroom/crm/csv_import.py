"""Import CRM records from a CSV file, idempotently, reporting each broken row.

Column mapping (headers are matched case-insensitively, spaces and dashes as underscores):
- every column whose header contains "email" is an email field named after the column:
  `email`, `e-mail`, `email address`, `main email`, `primary email` → `main`;
  `secondary email` → `secondary`, `assistant_email` → `assistant`, `Email 2` → `email_2`;
  the first email column is `main` when no column says so;
- `name`, or `first_name` + `last_name` → the record's name;
- `account` / `company` → the contact's (case's, opportunity's) account, created when new;
  a lead keeps it as its `company` field;
- `domain` / `website` → an account's domains;
- `phone`, `title` → fields; every other column → a custom field under `custom`.

Re-importing updates records and never duplicates them: the key is the main email address
within the record type (an account without email: its name). A row is created with
`records.add_record` and an existing record changed with `records.update_record`, so CSV
import re-links stored mail by the same rules as every other edit. A row that cannot be
imported is reported as `line N: reason` and every other row is imported; each row runs in
its own savepoint, so one bad row never undoes another.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailroom.crm.records import (
    EmailField,
    add_record,
    check_type,
    find_by_email,
    get_or_create_account,
    update_record,
)
from mailroom.db.models import Company, Record
from mailroom.digits import is_number
from mailroom.errors import BadInput
from mailroom.mail.addresses import normalise
from mailroom.mail.domains import normalise_domain

MAIN_ALIASES = {
    "email",
    "e_mail",
    "email_address",
    "e_mail_address",
    "main_email",
    "primary_email",
    "email_main",
}
NAME_COLUMNS = {"name", "full_name"}
ACCOUNT_COLUMNS = {
    "account",
    "company",
    "account_name",
    "company_name",
    "organisation",
    "organization",
}
DOMAIN_COLUMNS = {"domain", "website", "web_site", "url", "domains"}
KNOWN_FIELDS = {"phone": "phone", "title": "title", "job_title": "title", "mobile": "mobile"}
MAX_BYTES = 50 * 1024 * 1024


@dataclass(slots=True)
class ImportReport:
    """What an import did, row by row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    encoding: str = "utf-8"

    @property
    def ok(self) -> bool:
        """Whether every row was imported."""
        return not self.errors


def slug(header: str) -> str:
    """A header as a column key: lower case, runs of other characters as one `_`."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def is_email_column(header: str) -> bool:
    """Whether a header names an email column (`email`, `e-mail`, `Email 2`, …)."""
    return "email" in slug(header).replace("_", "")


def email_field_name(header: str) -> str:
    """The record's email field for an email column (`main`, `secondary`, `email_2`, …)."""
    key = slug(header)
    if key in MAIN_ALIASES:
        return "main"
    rest = re.sub(r"(^|_)(e_?mail|address)(_|$)", "_", key).strip("_")
    if not rest:
        return "main"
    return key if is_number(rest) else rest


def _decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read in: UTF-8 (with or without a BOM), else cp1252."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    # cp1252 decodes almost anything; latin-1 decodes everything
    return data.decode("latin-1"), "latin-1"  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Row:
    """One CSV row: the line it starts on, its values, or why it could not be read."""

    line: int
    values: list[str]
    error: str | None = None


def _reason(exc: csv.Error) -> str:
    text = str(exc)
    if "unexpected end of data" in text:
        return "a quote opened on this line is never closed"
    return f"the CSV syntax is broken ({text})"


def parse_rows(text: str, dialect: Any) -> list[Row]:
    """Every row of `text` with the line it starts on; a broken row never swallows others.

    The reader is strict, so a quote that is never closed or stray text after a closing
    quote is an error rather than a field holding the rest of the file. Such a row is
    reported on the line it starts on and reading starts again on the next line.
    """
    lines = list(io.StringIO(text, newline=""))
    rows: list[Row] = []
    start = 0  # index in `lines` where the current reader begins
    while start < len(lines):
        reader = csv.reader(iter(lines[start:]), dialect, strict=True)
        line, restart = start + 1, None
        while restart is None:
            try:
                values = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                rows.append(Row(line, [], _reason(exc)))
                restart = line  # index of the line after the one the broken row starts on
                continue
            rows.append(Row(line, values))
            line = start + reader.line_num + 1
        if restart is None:
            break
        start = restart
    return rows


def read_rows(path: Path) -> tuple[list[str], list[Row], str]:
    """The header and the rows after it; tolerates BOMs and Excel's cp1252."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"Cannot read {path}: {exc.strerror}.") from exc
    if len(data) > MAX_BYTES:
        raise BadInput(f"{path} is larger than {MAX_BYTES // 2**20} MB; split it.")
    text, encoding = _decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = parse_rows(text, dialect)
    if not rows:
        raise BadInput(f"{path} is empty.", hint="The first line must name the columns.")
    header = rows[0]
    if header.error is not None:
        raise BadInput(f"{path}: line 1: {header.error}.")
    if any("\0" in cell for cell in header.values):
        raise BadInput(f"{path}: line 1: a column name holds a NUL byte.")
    return header.values, rows[1:], encoding.replace("-sig", "")


def _check_row(row: Row, header: list[str]) -> list[str]:
    """The row's values, one per column; BadInput saying why the row cannot be imported."""
    if row.error is not None:
        raise BadInput(row.error)
    values = row.values
    if len(values) != len(header):
        raise BadInput(f"it has {len(values)} values but the header has {len(header)} columns")
    for column, value in zip(header, values, strict=True):
        if "\0" in value:  # PostgreSQL refuses NUL in text; no database should store it
            raise BadInput(f"{column.strip() or 'a cell'!r} holds a NUL byte")
    return values


def import_csv(session: Session, *, company: Company, path: Path, record_type: str) -> ImportReport:
    """Import every row of `path` as `record_type` records of `company`; what happened."""
    kind = check_type(record_type)
    header, rows, encoding = read_rows(path)
    columns = [slug(h) for h in header]
    if not any(columns):
        raise BadInput(f"{path}: the first line has no column names.")
    email_cols = [(i, email_field_name(h)) for i, h in enumerate(header) if is_email_column(h)]
    if email_cols and all(name != "main" for _, name in email_cols):
        email_cols[0] = (email_cols[0][0], "main")
    report = ImportReport(encoding=encoding)
    for row in rows:
        if row.error is None and not any(v.strip() for v in row.values):
            continue
        try:
            values = _check_row(row, header)
            with session.begin_nested():
                outcome = _import_row(session, company, kind, header, columns, email_cols, values)
        except BadInput as exc:
            report.errors.append((row.line, exc.message))
            continue
        if outcome == "created":
            report.created += 1
        elif outcome == "updated":
            report.updated += 1
        else:
            report.unchanged += 1
    return report


def _import_row(
    session: Session,
    company: Company,
    kind: str,
    header: list[str],
    columns: list[str],
    email_cols: list[tuple[int, str]],
    values: list[str],
) -> str:
    cells = {columns[i]: values[i].strip() for i in range(len(header))}
    emails = _emails(header, email_cols, values)
    name = next((cells[c] for c in columns if c in NAME_COLUMNS and cells[c]), "")
    if not name:
        name = " ".join(p for p in (cells.get("first_name", ""), cells.get("last_name", "")) if p)
    account_name = next((cells[c] for c in columns if c in ACCOUNT_COLUMNS and cells[c]), "")
    if kind == "account" and not name:
        name = account_name
    domains = [_domain(cells[c]) for c in columns if c in DOMAIN_COLUMNS and cells[c]]
    fields, custom = _fields(header, columns, cells, email_cols)
    if account_name and kind != "account":
        fields["company" if kind == "lead" else "account"] = account_name
    if custom:
        fields["custom"] = custom
    main = next((e.address for e in emails if e.field == "main"), None)
    if not main and not name:
        raise BadInput("it has neither an email address nor a name")
    account = None
    if account_name and kind in ("contact", "case", "opportunity"):
        account = get_or_create_account(session, company=company, name=account_name)
    existing = _find_existing(session, company.id, kind, main, name)
    if existing is None:
        add_record(
            session,
            company=company,
            record_type=kind,
            name=name or (main or ""),
            emails=emails,
            domains=domains,
            account=account,
            fields=fields,
        )
        return "created"
    changed = update_record(
        session,
        record=existing,
        name=name or None,
        emails=emails,
        domains=domains,
        account=account,
        fields=fields,
    )
    return "updated" if changed else "unchanged"


def _emails(
    header: list[str], email_cols: list[tuple[int, str]], values: list[str]
) -> list[EmailField]:
    """The row's addresses under their field names; BadInput for one that is not one."""
    emails: list[EmailField] = []
    for index, name in email_cols:
        raw = values[index].strip()
        if not raw:
            continue
        address = normalise(raw)
        if address is None:
            raise BadInput(f"{header[index]!r} is not an email address: {raw!r}")
        emails.append(EmailField(field=name, address=address))
    return emails


def _fields(
    header: list[str],
    columns: list[str],
    cells: dict[str, str],
    email_cols: list[tuple[int, str]],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The row's known fields (`phone`, `title`) and its other columns (custom, by header)."""
    fields: dict[str, Any] = {}
    custom: dict[str, str] = {}
    used = NAME_COLUMNS | ACCOUNT_COLUMNS | DOMAIN_COLUMNS | {"first_name", "last_name"}
    for i, column in enumerate(columns):
        value = cells[column]
        if not value or any(i == idx for idx, _ in email_cols) or column in used:
            continue
        if column in KNOWN_FIELDS:
            fields[KNOWN_FIELDS[column]] = value
        else:
            custom[header[i].strip() or f"column_{i + 1}"] = value
    return fields, custom


def _find_existing(
    session: Session, company_id: int, kind: str, main: str | None, name: str
) -> Record | None:
    if main:
        found = find_by_email(session, company_id=company_id, address=main, record_type=kind)
        return found[0] if found else None
    return session.scalar(
        select(Record)
        .where(Record.company_id == company_id, Record.type == kind, Record.name == name)
        .order_by(Record.id)
        .limit(1)
    )


def _domain(value: str) -> str:
    host = urlsplit(value if "//" in value else f"//{value}").hostname or ""
    host = host.removeprefix("www.")
    domain = normalise_domain(host)
    if domain is None:
        raise BadInput(f"{value!r} is not a domain or web address")
    return domain
