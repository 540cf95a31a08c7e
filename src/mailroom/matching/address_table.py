"""A read-only table of addresses and the records holding them, packed into arrays.

A million addresses as a dict of strings to tuples of small objects cost ~425 MB in a
process; packed here they cost ~60 MB: each address is a 64-bit `hash()` in a sorted
array (found with `bisect`, in C) beside its bytes in one blob (compared on a hash match,
so a collision never returns another address's records) and the hit's record id, account
id, type and field as array entries. `hash()` of a str is stable within a process, which
is the table's whole life. Changes are not applied here: matching.address_index lays the
changed addresses over the table and builds a new one when too many have piled up.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

from mailroom.matching.index import AddressHit

NO_ACCOUNT = -1


class AddressTable:
    """address → the records holding it (in the order the rows were given)."""

    __slots__ = ("_accounts", "_blob", "_fields", "_hashes", "_names", "_offsets", "_records")

    def __init__(self, rows: Iterable[tuple[str, int, str, str, int | None]]) -> None:
        hashes, records, accounts = array("q"), array("q"), array("q")
        fields, offsets, blob = array("I"), array("Q", [0]), bytearray()
        codes: dict[tuple[str, str], int] = {}
        for address, record_id, rtype, field_name, account_id in rows:
            data = address.encode()
            hashes.append(hash(address))
            blob += data
            offsets.append(len(blob))
            records.append(record_id)
            accounts.append(NO_ACCOUNT if account_id is None else account_id)
            fields.append(codes.setdefault((rtype, field_name), len(codes)))
        order = sorted(range(len(hashes)), key=hashes.__getitem__)  # stable: row order kept
        self._hashes = array("q", (hashes[i] for i in order))
        self._records = array("q", (records[i] for i in order))
        self._accounts = array("q", (accounts[i] for i in order))
        self._fields = array("I", (fields[i] for i in order))
        packed, starts = bytearray(), array("Q", [0])
        for i in order:
            packed += blob[offsets[i] : offsets[i + 1]]
            starts.append(len(packed))
        self._blob, self._offsets = bytes(packed), starts
        self._names = list(codes)

    def __len__(self) -> int:
        return len(self._hashes)

    def get(self, address: str) -> tuple[AddressHit, ...]:
        """The hits of `address`; () when no record holds it."""
        wanted, hashes = hash(address), self._hashes
        i = bisect_left(hashes, wanted)
        if i == len(hashes) or hashes[i] != wanted:
            return ()
        data, found = address.encode(), []
        while i < len(hashes) and hashes[i] == wanted:
            if self._blob[self._offsets[i] : self._offsets[i + 1]] == data:
                rtype, field_name = self._names[self._fields[i]]
                account = self._accounts[i]
                found.append(
                    AddressHit(
                        self._records[i],
                        rtype,
                        field_name,
                        None if account == NO_ACCOUNT else account,
                    )
                )
            i += 1
        return tuple(found)
