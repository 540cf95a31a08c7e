"""A read-only table of addresses and the records holding them, packed into numpy arrays.

A million addresses as a dict of strings to tuples of small objects cost ~425 MB in a
process; packed here they cost ~61 MB: each address is a 64-bit `hash()` in an array
sorted by hash (equal hashes keep the rows' order), its bytes in one blob (compared on a
hash match, so a collision never returns another address's records) and the hit's record
id, account id, type and field as array entries. An open-addressing slot array (linear
probing, at most half full) maps a hash to the first row holding it.

`find` answers a whole batch below the interpreter (decision 0032): the batch's hashes go
into one array and are probed together — one gather per probe step over the addresses
still unresolved, a handful of steps at half load — and the addresses found are checked
(their lengths in one array operation, their bytes by `bytes.startswith` mapped over the
batch) and made into hits by `map`s and `zip`s: no Python bytecode runs per address but
for the rare address held twice or sharing its hash. Probing one address at a time in
Python was most of matching's time at a million records (bench/README.md). `hash()` of a
str is stable within a process, which is the table's whole life. Changes are not applied
here: matching.address_index lays the changed addresses over the table and builds a new
one when too many have piled up.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any

from mailroom.matching.index import AddressHit

if TYPE_CHECKING:  # imported where a table is built or asked: a command that matches
    import numpy as np  # nothing (or a company with no address) never loads numpy
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

NO_ACCOUNT = -1
FEW = 24  # fewer addresses than this are probed one at a time (a message, not a batch)


def _slots_for(first_rows: Ints, hashes: Ints, count: int) -> tuple[int, npt.NDArray[np.uint32]]:
    """(mask, slots): slot → 1 + the first row of a hash, 0 empty; each hash at its home
    slot (hash & mask) or the first free one after it, so a probe stops at an empty slot.

    Built a round at a time: every pending hash whose current slot is free takes it (one
    per slot: the others move on, past a slot now taken), the rest move one slot on; a
    hash only ever passes occupied slots, as one inserted alone would."""
    import numpy as np

    size = 8
    while size < 2 * count:
        size *= 2
    mask = size - 1
    slots = np.zeros(size, dtype=np.uint32)
    rows, where = first_rows, hashes[first_rows] & mask
    while rows.size:
        free = np.flatnonzero(slots[where] == 0)
        taken, pick = np.unique(where[free], return_index=True)
        chosen = free[pick]
        slots[taken] = rows[chosen] + 1
        left = np.ones(rows.size, dtype=bool)
        left[chosen] = False
        rows, where = rows[left], (where[left] + 1) & mask
    return mask, slots


def _narrow(values: Ints) -> npt.NDArray[np.signedinteger[Any]]:
    """`values` in the narrowest of int16, int32, int64 that holds them all (a million
    record ids, offsets, lengths and field codes: 4-8 MB each saved)."""
    import numpy as np

    if not values.size:
        return values
    low, high = int(values.min()), int(values.max())
    for kind in (np.int16, np.int32):
        limits = np.iinfo(kind)
        if limits.min <= low and high <= limits.max:
            return values.astype(kind)
    return values


class AddressTable:
    """address → the records holding it (in the order the rows were given)."""

    __slots__ = (
        "_accounts",
        "_blob",
        "_count",
        "_field_names",
        "_fields",
        "_hashes",
        "_lengths",
        "_mask",
        "_names",
        "_records",
        "_slots",
        "_starts",
        "_types",
        "_views",
    )

    def __init__(self, rows: Iterable[tuple[str, int, str, str, int | None]]) -> None:
        hashes, records, accounts = array("q"), array("q"), array("q")
        fields, offsets, blob = array("I"), array("q", [0]), bytearray()
        codes: dict[tuple[str, str], int] = {}
        for address, record_id, rtype, field_name, account_id in rows:
            hashes.append(hash(address))
            blob += address.encode()
            offsets.append(len(blob))
            records.append(record_id)
            accounts.append(NO_ACCOUNT if account_id is None else account_id)
            fields.append(codes.setdefault((rtype, field_name), len(codes)))
        self._count = len(hashes)
        if self._count:  # an empty table (each company's before its first build) is all
            self._pack(hashes, records, accounts, fields, offsets, blob)  # len and find
        self._names = list(codes)
        self._types = [rtype for rtype, _ in self._names]  # by field code, for `find`
        self._field_names = [field_name for _, field_name in self._names]

    def _pack(
        self,
        hashes: array[int],
        records: array[int],
        accounts: array[int],
        fields: array[int],
        offsets: array[int],
        blob: bytearray,
    ) -> None:
        """The row arrays as sorted numpy arrays, the slot array over them."""
        import numpy as np

        raw = np.frombuffer(hashes, dtype=np.int64)
        order = np.argsort(raw, kind="stable")  # stable: equal addresses keep row order
        ordered = raw[order]
        # Padded by one sentinel each side: slot value v (1 + row) reads _hashes[v], and
        # the row after the last still has a hash to compare.
        self._hashes = np.concatenate(([0], ordered, [0])).astype(np.int64)
        self._records = _narrow(np.frombuffer(records, dtype=np.int64)[order])
        self._accounts = _narrow(np.frombuffer(accounts, dtype=np.int64)[order])
        self._fields = _narrow(np.frombuffer(fields, dtype=np.uint32).astype(np.int64)[order])
        ends = np.frombuffer(offsets, dtype=np.int64)
        self._starts = _narrow(ends[:-1][order])  # the blob stays in row order
        self._lengths = _narrow((ends[1:] - ends[:-1])[order])
        self._blob = bytes(blob)
        firsts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1  # each hash's first row
        firsts = np.concatenate(([0], firsts))
        self._mask, self._slots = _slots_for(firsts, ordered, len(ordered))
        self._views = tuple(  # element reads as Python ints, for `_find_each`
            memoryview(a)  # type: ignore[arg-type]
            for a in (
                self._hashes,
                self._slots,
                self._starts,
                self._lengths,
                self._records,
                self._accounts,
                self._fields,
            )
        )

    def __len__(self) -> int:
        return self._count

    def get(self, address: str) -> tuple[AddressHit, ...]:
        """The hits of `address`; () when no record holds it."""
        return self.find((address,)).get(address, ())

    def _first_rows(self, wanted: Ints) -> Ints:
        """1 + the first row of each hash in `wanted`; 0 where no row has it."""
        import numpy as np

        found = np.zeros(wanted.size, dtype=np.int64)
        slots, hashes, mask = self._slots, self._hashes, self._mask
        at, where = np.arange(wanted.size), wanted & mask
        while at.size:  # probe step k looks at slot home + k of the hashes still open
            value = slots[where].astype(np.int64)
            hit = (hashes[value] == wanted) & (value != 0)
            found[at[hit]] = value[hit]
            more = (value != 0) & ~hit
            at, where, wanted = at[more], (where[more] + 1) & mask, wanted[more]
        return found

    def find(self, addresses: Iterable[str]) -> dict[str, tuple[AddressHit, ...]]:
        """address → its hits, for the given addresses that some record holds (one call
        for a batch: Python runs only for the addresses found)."""
        asked: Sequence[str] = addresses if isinstance(addresses, list | tuple) else [*addresses]
        if not asked or not self._count:
            return {}
        if len(asked) < FEW:
            return self._find_each(asked)
        import numpy as np

        wanted = np.fromiter(map(hash, asked), dtype=np.int64, count=len(asked))
        first = self._first_rows(wanted)
        which = np.flatnonzero(first)
        if not which.size:
            return {}
        rows = first[which] - 1
        # A second row under the same hash: the address is held twice, or a collision.
        # Those few go through `_hits_from`; the others are checked and made below in bulk.
        twice = self._hashes[rows + 2] == wanted[which]
        result: dict[str, tuple[AddressHit, ...]] = {}
        if twice.any():
            for k, row in zip(which[twice].tolist(), rows[twice].tolist(), strict=True):
                address = asked[k]
                held = self._hits_from(row, address, hash(address))
                if held:
                    result[address] = held
            which, rows = which[~twice], rows[~twice]
        found = list(map(asked.__getitem__, which.tolist()))
        data = list(map(str.encode, found))
        same = self._same_bytes(data, rows)
        if not same.all():  # an unknown address whose hash a held one has
            keep = same.tolist()
            found = list(compress(found, keep))
            rows = rows[same]
        codes = self._fields[rows].tolist()
        accounts = self._accounts[rows].astype(object)
        accounts[accounts == NO_ACCOUNT] = None
        hits = zip(
            self._records[rows].tolist(),
            map(self._types.__getitem__, codes),
            map(self._field_names.__getitem__, codes),
            accounts.tolist(),
            strict=True,
        )
        # address → (hit,): `zip` of one iterable yields the one-element tuples, and the
        # hits are made by tuple.__new__ through `map`: no Python code per address.
        made = map(tuple.__new__, repeat(AddressHit), hits)
        result.update(zip(found, zip(made), strict=True))
        return result

    def _same_bytes(self, data: list[bytes], rows: Ints) -> npt.NDArray[np.bool_]:
        """Whether each of `data` equals the address bytes of the row beside it: the
        lengths compared in one array operation, the bytes by `bytes.startswith` mapped
        over the batch (C all the way; a gather of every byte through numpy cost more)."""
        import numpy as np

        lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
        starts = self._starts[rows].tolist()
        prefix = np.fromiter(map(self._blob.startswith, data, starts), dtype=bool, count=len(data))
        same: npt.NDArray[np.bool_] = (lengths == self._lengths[rows]) & prefix
        return same

    def _find_each(self, asked: Sequence[str]) -> dict[str, tuple[AddressHit, ...]]:
        """`find` for a few addresses, probed one at a time through memoryviews of the
        arrays (numpy's fixed cost per call is worth paying only for a batch)."""
        hashes, slots, mask = self._views[0], self._views[1], self._mask
        result: dict[str, tuple[AddressHit, ...]] = {}
        for address in asked:
            wanted = hash(address)
            i = wanted & mask
            while True:
                value = slots[i]  # 1 + row, and _hashes[1 + row] is that row's hash
                if not value or hashes[value] == wanted:
                    break
                i = (i + 1) & mask
            if value:
                hits = self._hits_from(value - 1, address, wanted)
                if hits:
                    result[address] = hits
        return result

    def _hits_from(self, row: int, address: str, wanted: int) -> tuple[AddressHit, ...]:
        """The hits of `address` among the rows from `row` on that share its hash."""
        hashes, _, starts, lengths, records, accounts, fields = self._views
        data, found, blob, names = address.encode(), [], self._blob, self._names
        while row < self._count and hashes[row + 1] == wanted:
            if lengths[row] == len(data) and blob.startswith(data, starts[row]):
                rtype, field_name = names[fields[row]]
                account: int | None = accounts[row]
                if account == NO_ACCOUNT:
                    account = None
                found.append(AddressHit(records[row], rtype, field_name, account))
            row += 1
        return tuple(found)
