"""Folder roles for IMAP: SPECIAL-USE attributes (RFC 6154 §2) first, well-known names next.

Dovecot, Gmail, Fastmail and Exchange put SPECIAL-USE attributes in plain LIST answers;
for servers that do not, a role goes to the folder with the best-ranked well-known name
(also after an "INBOX." or "INBOX/" prefix). One folder per role.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailroom.connectors.base import FolderInfo, FolderRole

# RFC 6154 §2 attributes, lower-cased: "\\sent" -> SENT, ...
SPECIAL_USE_ROLES = {
    "\\" + role.value: role
    for role in FolderRole
    if role not in (FolderRole.INBOX, FolderRole.OTHER)
}

# Well-known names, best first, for servers without SPECIAL-USE (compared case-insensitively,
# also after stripping an "INBOX." or "INBOX/" prefix).
NAME_ROLES: dict[FolderRole, tuple[str, ...]] = {
    role: tuple(names.split("|"))
    for role, names in {
        FolderRole.SENT: "sent|sent items|sent messages|sent mail|[gmail]/sent mail"
        "|[google mail]/sent mail",
        FolderRole.DRAFTS: "drafts|draft|[gmail]/drafts|[google mail]/drafts",
        FolderRole.TRASH: "trash|deleted items|deleted messages|[gmail]/trash|[gmail]/bin",
        FolderRole.JUNK: "junk|spam|junk e-mail|junk email|[gmail]/spam",
        FolderRole.ARCHIVE: "archive|archives",
        FolderRole.ALL: "[gmail]/all mail|[google mail]/all mail|all mail",
    }.items()
}


def assign_roles(folders: Sequence[tuple[str, str | None, set[str]]]) -> list[FolderRole]:
    """Roles for (name, delimiter, lower-case LIST attributes) triples, in the same order.

    INBOX is INBOX; a SPECIAL-USE attribute wins; a role no folder claims by attribute goes
    to the folder with the best-ranked well-known name (one folder per role).
    """
    roles: list[FolderRole] = []
    claimed: set[FolderRole] = set()
    for name, _, attrs in folders:
        role = FolderRole.INBOX if name.upper() == "INBOX" else FolderRole.OTHER
        if role is FolderRole.OTHER:
            role = next(
                (SPECIAL_USE_ROLES[a] for a in sorted(attrs) if a in SPECIAL_USE_ROLES), role
            )
        roles.append(role)
        claimed.add(role)
    for role, names in NAME_ROLES.items():
        if role in claimed:
            continue
        best: tuple[int, int] | None = None
        for index, (name, delimiter, _) in enumerate(folders):
            if roles[index] is not FolderRole.OTHER:
                continue
            rank = _name_rank(name, delimiter, names)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, index)
        if best is not None:
            roles[best[1]] = role
    return roles


def _name_rank(name: str, delimiter: str | None, names: tuple[str, ...]) -> int | None:
    lowered = name.lower()
    candidates = [lowered]
    for sep in {delimiter or ".", ".", "/"}:
        if lowered.startswith("inbox" + sep):
            candidates.append(lowered[len("inbox" + sep) :])
    ranks = [names.index(c) for c in candidates if c in names]
    return min(ranks) if ranks else None


def default_sync_folders(folders: Sequence[FolderInfo]) -> list[str]:
    """The folders a new mailbox syncs by default: INBOX and the Sent folder."""
    chosen = [f.name for f in folders if f.role is FolderRole.INBOX][:1]
    chosen += [f.name for f in folders if f.role is FolderRole.SENT][:1]
    return chosen
