"""Records created, edited, deleted and merged, and records made from an email — one
function per use case, called alike by the CLI, the pages and the API.

Access (issue 13, `docs/decisions/0016-record-editing.md`):
- a record outside the viewer's company is `NotFound`, like one that does not exist;
- every user of the company creates and edits records (sales work on shared records);
- deleting and merging: an admin, or the record's owner (both records' for a merge);
- an owner is a user of the same company;
- a record is made from an email only by someone who sees the whole message.
`viewer=None` is the operator at the terminal (the CLI): the company's records, no role.

Addresses: a record's main address may not be another record's of the same type (409,
naming that record). Adding an address or domain links the stored mail at once
(services.record_links, in the background above 10,000 messages); removing one removes
the links it made. Deleting a record keeps its mail: the links go, the messages stay
(shown as unmatched). Merging runs services.record_merge.MERGE_STEPS, then deletes the
merged record and links the survivor's mail again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mailroom.app import App
from mailroom.crm import access
from mailroom.crm.access import Viewer
from mailroom.crm.records import (
    EmailField,
    check_main_address_free,
    check_type,
    clean_email,
    get_record,
    remove_domains,
    remove_emails,
    set_domains,
    set_emails,
)
from mailroom.db.models import (
    Company,
    Message,
    MessageAddress,
    MessageLink,
    Record,
    RecordDomain,
    User,
)
from mailroom.digits import is_number
from mailroom.errors import BadInput, Forbidden, NotFound
from mailroom.mail.addresses import domain_of
from mailroom.matching.directory import load_directory
from mailroom.matching.index import is_free_mail
from mailroom.matching.manual import link_by_hand
from mailroom.services.record_links import LinkReport, link_stored_mail, unlink_removed
from mailroom.services.record_merge import MERGE_STEPS

FROM_EMAIL_TYPES = ("lead", "contact", "case")
UNSET: Any = object()


@dataclass(slots=True)
class RecordChange:
    """The record after a create or edit, and what happened to its mail."""

    record: Record
    linked: int = 0
    queued: int = 0
    unlinked: int = 0
    notes: list[str] = field(default_factory=list)


def find_record(
    session: Session, *, viewer: Viewer | None, ref: str, company_id: int | None = None
) -> Record:
    """A record by `TYPE:ID`, within the viewer's company (the CLI: `company_id`, or any)."""
    if viewer is not None:
        company_id = viewer.company_id
    if company_id is None:
        ident = ref.rpartition(":")[2]
        found = session.get(Record, int(ident)) if is_number(ident) and len(ident) < 19 else None
        if found is None:
            raise NotFound(f"No record {ref}.", hint="Use TYPE:ID as `records list` shows it.")
        company_id = found.company_id
    return get_record(session, company_id=company_id, ref=ref)


def _owner(session: Session, company_id: int, owner: int | str | None) -> User | None:
    """The owning user by id or email, of the same company; BadInput otherwise."""
    if owner is None or owner == "":
        return None
    if isinstance(owner, int):
        user = session.get(User, owner)
    else:
        user = session.scalar(select(User).where(User.email == owner.strip().lower()))
    if user is None or user.company_id != company_id:
        raise BadInput(
            f"No user {owner} in this company to own the record.",
            hint="Give the id or email of a user of your company.",
        )
    return user


def _account(session: Session, company_id: int, account_id: int | None) -> Record | None:
    if account_id is None:
        return None
    account = session.get(Record, account_id)
    if account is None or account.company_id != company_id or account.type != "account":
        raise BadInput(
            f"No account {account_id} in this company.", hint="Give the id of one of your accounts."
        )
    return account


def _check_main(session: Session, record: Record) -> None:
    mains = [e.address for e in record.emails if e.field == "main"]
    check_main_address_free(session, record=record, addresses=mains)


def _may_remove(viewer: Viewer | None, record: Record) -> None:
    if viewer is None or viewer.is_admin or record.owner_id == viewer.user_id:
        return
    raise Forbidden(
        f"Only an admin or the owner of {record.ref} may delete or merge it.",
        hint="Ask an admin of your company, or its owner.",
    )


def _company(session: Session, viewer: Viewer | None, company_id: int | None) -> Company:
    wanted = viewer.company_id if viewer is not None else company_id
    company = session.get(Company, wanted) if wanted is not None else None
    if company is None:
        raise NotFound("No such company.", hint="Name the company with --company.")
    return company


def create_record(
    session: Session,
    *,
    viewer: Viewer | None,
    record_type: str,
    name: str,
    emails: Sequence[EmailField] = (),
    domains: Sequence[str] = (),
    account_id: int | None = None,
    owner: int | str | None = None,
    fields: dict[str, Any] | None = None,
    company_id: int | None = None,
    app: App | None = None,
) -> RecordChange:
    """Create a record and link the stored mail that concerns it (not committed)."""
    company = _company(session, viewer, company_id)
    record = Record(
        company_id=company.id,
        type=check_type(record_type),
        name=name.strip(),
        account_id=None,
        fields=dict(fields or {}),
    )
    record.account_id = (
        account.id if (account := _account(session, company.id, account_id)) else None
    )
    record.owner = _owner(session, company.id, owner)
    if not record.name and not emails:
        raise BadInput("A record needs a name or an email address.", hint="Give `name`.")
    session.add(record)
    session.flush()
    set_emails(session, record, emails)
    if emails and not any(e.field == "main" for e in record.emails):
        record.emails[0].field = "main"
    set_domains(session, record, domains)
    _check_main(session, record)
    session.flush()
    report = link_stored_mail(session, record=record, app=app)
    return RecordChange(record=record, linked=report.linked, queued=report.queued)


@dataclass(frozen=True, slots=True)
class RecordEdit:
    """What to change; absent (`UNSET`/None/empty) parts stay as they are.

    `emails`/`domains` replace the lists (the API's PATCH); `add_*`/`remove_*` change them
    one by one (the CLI and the pages)."""

    name: str | None = None
    record_type: str | None = None
    emails: Sequence[EmailField] | None = None
    domains: Sequence[str] | None = None
    add_emails: Sequence[EmailField] = ()
    remove_emails: Sequence[str] = ()
    add_domains: Sequence[str] = ()
    remove_domains: Sequence[str] = ()
    account_id: Any = UNSET
    owner: Any = UNSET
    fields: dict[str, Any] | None = None


def _address_changes(edit: RecordEdit, record: Record) -> tuple[list[EmailField], list[str]]:
    held = {e.address for e in record.emails}
    adds = [e for e in edit.add_emails if clean_email(e.address) not in held]  # keeps its field
    removes = [clean_email(a) for a in edit.remove_emails]
    if edit.emails is not None:
        wanted = {clean_email(e.address) for e in edit.emails}
        removes += [e.address for e in record.emails if e.address not in wanted]
        adds += list(edit.emails)
    return adds, removes


def _domain_changes(edit: RecordEdit, record: Record) -> tuple[list[str], list[str]]:
    adds, removes = list(edit.add_domains), list(edit.remove_domains)
    if edit.domains is not None:
        keep = {d.strip().lower().rstrip(".") for d in edit.domains}
        removes += [d.domain for d in record.domains if d.domain not in keep]
        adds += list(edit.domains)
    return adds, removes


def _apply_values(session: Session, record: Record, edit: RecordEdit) -> None:
    if edit.name is not None:
        record.name = edit.name.strip()
    if edit.record_type is not None:  # a lead becomes a contact, say; its links stay
        kind = check_type(edit.record_type)
        if "account" in (kind, record.type) and kind != record.type:
            raise BadInput(
                "An account cannot change type, nor anything become one.",
                hint="Accounts hold domains and contacts: create the account instead.",
            )
        record.type = kind
    if edit.fields is not None:
        record.fields = {k: v for k, v in {**record.fields, **edit.fields}.items() if v is not None}
    if edit.account_id is not UNSET:
        account = _account(session, record.company_id, edit.account_id)
        if account is not None and account.id == record.id:
            raise BadInput("An account cannot be its own account.")
        record.account_id = account.id if account else None
    if edit.owner is not UNSET:
        record.owner = _owner(session, record.company_id, edit.owner)


def edit_record(
    session: Session,
    *,
    viewer: Viewer | None,
    record: Record,
    edit: RecordEdit,
    app: App | None = None,
) -> RecordChange:
    """Change a record; new addresses link their stored mail, removed ones unlink what they
    linked (not committed)."""
    if viewer is not None and record.company_id != viewer.company_id:
        raise NotFound(f"No record {record.ref}.")
    _apply_values(session, record, edit)
    add_emails, drop_emails = _address_changes(edit, record)
    add_domains, drop_domains = _domain_changes(edit, record)
    gone = remove_emails(record, drop_emails)
    gone_domains = remove_domains(record, drop_domains)
    session.flush()
    set_emails(session, record, add_emails)
    set_domains(session, record, add_domains)
    if record.emails and not any(e.field == "main" for e in record.emails):
        record.emails[0].field = "main"  # the first remaining address becomes the main one
    _check_main(session, record)
    session.flush()
    change = RecordChange(record=record)
    change.unlinked = unlink_removed(session, record=record, addresses=gone, domains=gone_domains)
    report: LinkReport = link_stored_mail(session, record=record, app=app)
    change.linked, change.queued = report.linked, report.queued
    return change


def delete_record(session: Session, *, viewer: Viewer | None, record: Record) -> int:
    """Delete the record; its mail stays, linked to nothing it was linked to through this
    record. Returns the number of messages unlinked (not committed)."""
    _may_remove(viewer, record)
    unlinked = session.execute(delete(MessageLink).where(MessageLink.record_id == record.id))
    session.delete(record)
    session.flush()
    return int(getattr(unlinked, "rowcount", 0) or 0)


def merge_records(
    session: Session, *, viewer: Viewer | None, survivor: Record, source: Record
) -> Record:
    """Merge `source` into `survivor` (same company and type): MERGE_STEPS move what is
    attached, the source is deleted, the survivor's mail is linked again (not committed)."""
    if source.company_id != survivor.company_id:
        raise NotFound(f"No record {source.ref}.")
    if source.id == survivor.id:
        raise BadInput("A record cannot be merged into itself.", hint="Name another record.")
    if source.type != survivor.type:
        raise BadInput(
            f"{source.ref} is a {source.type} and {survivor.ref} a {survivor.type}.",
            hint="Merge records of the same type.",
        )
    _may_remove(viewer, survivor)
    _may_remove(viewer, source)
    for step in MERGE_STEPS:
        step(session, source, survivor)
    session.flush()
    session.expire(survivor)
    session.delete(source)
    session.flush()
    link_stored_mail(session, record=survivor)
    return survivor


# ---- a record from an email ----------------------------------------------------------


def _person(session: Session, message: Message, use: str) -> tuple[str, str]:
    """(address, name) of the sender, or of the first Reply-To for web-form mail."""
    if use == "reply-to":
        if not message.reply_to_addresses:
            raise BadInput(
                "This email has no Reply-To address.", hint="Use the sender (`use`: from)."
            )
        address, role = message.reply_to_addresses[0], "reply-to"
    elif use == "from":
        if not message.from_address:
            raise BadInput("This email has no sender address.", hint="Use `use`: reply-to.")
        address, role = message.from_address, "from"
    else:
        raise BadInput(f"Unknown `use` {use!r}.", hint="Use from or reply-to.")
    name = session.scalar(
        select(MessageAddress.name).where(
            MessageAddress.message_id == message.id,
            MessageAddress.role == role,
            MessageAddress.address == address,
        )
    )
    if not name and role == "from":
        name = message.from_name
    return address, (name or address.split("@")[0]).strip()


def _account_for(
    session: Session, *, company: Company, address: str, create: bool, viewer: Viewer | None
) -> int | None:
    """The account holding the address's domain (created for a contact), unless free mail."""
    domain = domain_of(address)
    if not domain or is_free_mail(domain):
        return None
    found = session.scalar(
        select(RecordDomain.record_id)
        .join(Record, Record.id == RecordDomain.record_id)
        .where(
            RecordDomain.company_id == company.id,
            RecordDomain.domain == domain,
            Record.type == "account",
        )
        .order_by(RecordDomain.record_id)
        .limit(1)
    )
    if found is not None or not create:
        return found
    made = create_record(
        session,
        viewer=viewer,
        company_id=company.id,
        record_type="account",
        name=domain,
        domains=[domain],
    )
    return made.record.id


def create_from_message(
    session: Session,
    *,
    viewer: Viewer | None,
    message_id: int,
    record_type: str,
    use: str = "from",
    company_id: int | None = None,
) -> RecordChange:
    """A lead, contact or case from an email: the sender's (or Reply-To's) name and address,
    the account of their domain (a contact's is created; never for free mail), the email
    linked to it (not committed)."""
    kind = check_type(record_type)
    if kind not in FROM_EMAIL_TYPES:
        raise BadInput(f"A {kind} cannot be made from an email.", hint="Use lead, contact or case.")
    if viewer is not None:
        message, level = access.get_message(session, viewer=viewer, message_id=message_id)
        if level != "everything":
            raise NotFound(f"No message {message_id}.", hint="Only people who see it whole use it.")
    else:
        found = session.get(Message, message_id)
        if found is None or (company_id is not None and found.company_id != company_id):
            raise NotFound(f"No message {message_id}.")
        message = found
    company = _company(session, None, message.company_id)
    address, name = _person(session, message, use)
    if load_directory(session, company.id).is_internal(address):
        raise BadInput(
            f"{address} is one of your company's own addresses.",
            hint="Make records only for people outside the company.",
        )
    account_id = _account_for(
        session, company=company, address=address, create=kind == "contact", viewer=viewer
    )
    change = create_record(
        session,
        viewer=viewer,
        company_id=company.id,
        record_type=kind,
        name=(message.subject or name) if kind == "case" else name,
        emails=[EmailField("main", address)],
        account_id=account_id,
        owner=viewer.user_id if viewer is not None else None,
    )
    linked = session.scalar(
        select(MessageLink.id).where(
            MessageLink.message_id == message.id, MessageLink.record_id == change.record.id
        )
    )
    if linked is None:
        link_by_hand(session, message=message, record=change.record)
    return change
