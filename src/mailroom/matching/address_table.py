"""A read-only table of addresses and the records holding them, packed into arrays.

A million addresses as a dict of strings to tuples of small objects cost ~425 MB in a
process; packed here they cost ~70 MB: each address is a 64-bit `hash()` in an array
sorted by hash beside its bytes in one blob (compared on a hash match, so a collision never
returns another address's records) and the hit's record id, account id, type and field as
array entries. An open-addressing slot array (linear probing, at most half full) maps a hash
to the first row holding it: a lookup reads one or two slots, where a binary search of the
sorted array took some twenty probes, each boxing an int (bench/README.md). `hash()` of a
str is stable within a process, which is the table's whole life. Changes are not applied
here: matching.address_index lays the changed addresses over the table and builds a new
one when too many have piled up.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from mailroom.matching.index import AddressHit

NO_ACCOUNT = -1


class AddressTable:
    """address → the records holding it (in the order the rows were given)."""

    __slots__ = (
        "_accounts",
        "_blob",
        "_fields",
        "_hashes",
        "_mask",
        "_names",
        "_offsets",
        "_records",
        "_slots",
    )

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
        self._build_slots()

    def _build_slots(self) -> None:
        """Slot (hash & mask, then the next ones) → 1 + the first row of that hash; 0 empty."""
        size = 8
        while size < 2 * len(self._hashes):
            size *= 2
        mask, slots, hashes = size - 1, array("I", bytes(4 * size)), self._hashes
        previous = None
        for row, value in enumerate(hashes):
            if value == previous:
                continue
            previous = value
            i = value & mask
            while slots[i]:
                i = (i + 1) & mask
            slots[i] = row + 1
        self._mask, self._slots = mask, slots

    def __len__(self) -> int:
        return len(self._hashes)

    def get(self, address: str) -> tuple[AddressHit, ...]:
        """The hits of `address`; () when no record holds it."""
        return self.find((address,)).get(address, ())

    def find(self, addresses: Iterable[str]) -> dict[str, tuple[AddressHit, ...]]:
        """address → its hits, for the given addresses that some record holds (one call
        for a batch: the loop below is most of matching's time at a million addresses)."""
        hashes, slots, mask, count = self._hashes, self._slots, self._mask, len(self._hashes)
        offsets, blob, records, accounts = self._offsets, self._blob, self._records, self._accounts
        fields, names = self._fields, self._names
        result: dict[str, tuple[AddressHit, ...]] = {}
        for address in addresses:
            wanted = hash(address)
            i = wanted & mask
            while True:
                row = slots[i]
                if not row or hashes[row - 1] == wanted:
                    break
                i = (i + 1) & mask
            if not row:
                continue
            i, data, found = row - 1, address.encode(), []
            while i < count and hashes[i] == wanted:
                if blob[offsets[i] : offsets[i + 1]] == data:
                    rtype, field_name = names[fields[i]]
                    account: int | None = accounts[i]
                    if account == NO_ACCOUNT:
                        account = None
                    found.append(AddressHit(records[i], rtype, field_name, account))
                i += 1
            if found:
                result[address] = tuple(found)
        return result
