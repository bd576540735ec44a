"""Name dictionaries: strings -> contiguous ids in order of first appearance, batch after batch.

The importer sees hundreds of millions of names in Arrow batches; a dictionary that lives across
batches lets it read the text once. Names are keyed by 128 bits computed from their bytes with
numpy (no Python loop): names of up to 15 bytes by their bytes and length (exact), longer names by
a 120-bit hash (two names collide with probability about n² / 2^121: none in any real graph). The
keys sit in one open-addressing table (linear probing, load <= 1/2) that lookups and inserts probe
in vectorised rounds. The dictionary keeps keys, not names: callers keep the new names that
`encode` returns (the importer streams them to disk), so memory is 20 bytes a slot, 40 to 80 bytes per name.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_U64 = np.uint64
_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], np.uint64)
_LONG = _U64(0xFF << 56)  # top byte of the second key word of hashed (>= 16 byte) names
_LOW56 = _U64((1 << 56) - 1)


def _fmix(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (a bijection), in place on a fresh array."""
    x ^= x >> _U64(33)
    x *= _U64(0xFF51AFD7ED558CCD)
    x ^= x >> _U64(33)
    x *= _U64(0xC4CEB9FE1A85EC53)
    x ^= x >> _U64(33)
    return x


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start byte [n] int64, length [n] int64, data words [w] uint64 zero-padded) of a string array."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)
            or pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)):
        raise TypeError(f"expected a string array, got {arr.type}")
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    n = len(arr)
    _, off_buf, data_buf = arr.buffers()
    off = np.frombuffer(off_buf, np.int64 if large else np.int32, n + 1, arr.offset * (8 if large else 4))
    start = off[:-1].astype(np.int64)
    length = np.diff(off).astype(np.int64)
    lo, hi = (int(off[0]), int(off[-1])) if n else (0, 0)
    data = np.frombuffer(data_buf, np.uint8, hi - lo, lo) if data_buf is not None and hi > lo \
        else np.zeros(0, np.uint8)
    words = np.zeros((hi - lo) // 8 + 3, np.uint64)
    words.view(np.uint8)[: hi - lo] = data
    return start - lo, length, words


def _word(words: np.ndarray, pos: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """The (up to) 8 bytes at byte positions `pos`, keeping `remaining` of them (little-endian)."""
    q = pos >> 3
    s = ((pos & 7) << 3).astype(np.uint64)
    w = words[q] >> s
    w |= (words[q + 1] << _U64(1)) << (_U64(63) - s)
    w &= _MASKS[np.clip(remaining, 0, 8)]
    return w


def name_keys(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """128-bit keys (k0 [n], k1 [n] uint64) of the names in a string array; k1 is never 0 for a
    non-empty name (its top byte is the length, or 0xFF for hashed names)."""
    start, length, words = _string_buffers(arr)
    k0 = _word(words, start, length)
    k1 = _word(words, start + 8, np.minimum(length - 8, 7))
    k1 |= length.astype(np.uint64) << _U64(56)
    long = np.flatnonzero(length >= 16)
    if long.size:
        st, ln = start[long], length[long]
        h0 = _fmix(ln.astype(np.uint64) ^ _U64(0x9E3779B97F4A7C15))
        h1 = _fmix(ln.astype(np.uint64) ^ _U64(0xD6E8FEB86659FD93))
        for k in range(int(ln.max() + 7) // 8):
            live = np.flatnonzero(ln > 8 * k)
            w = _word(words, st[live] + 8 * k, ln[live] - 8 * k)
            h0[live] = _fmix(h0[live] * _U64(0x100000001B3) + w)
            h1[live] = _fmix((h1[live] ^ w) * _U64(0xC2B2AE3D27D4EB4F) + _U64(k + 1))
        k0[long] = h0
        k1[long] = (h1 & _LOW56) | _LONG
    return k0, k1


def _pack(k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
    """Keys as one 16-byte item each (complex128 is only a carrier: numpy gathers 16-byte items
    fast; keys are compared as uint64 pairs, never as floats)."""
    out = np.empty(len(k0), np.complex128)
    u = out.view(np.uint64).reshape(-1, 2)
    u[:, 0], u[:, 1] = k0, k1
    return out


def keys_of(arr: pa.Array) -> np.ndarray:
    """The packed 128-bit keys [n] of the names of a string array (pure; safe in any thread)."""
    return _pack(*name_keys(arr))


def hash_of(keys: np.ndarray) -> np.ndarray:
    """64-bit hashes [n] of packed keys (what places them in the table; pure, any thread)."""
    k = _pairs(keys)
    return _fmix(k[:, 0] * _U64(0x9E3779B97F4A7C15) + k[:, 1])


def _pairs(keys: np.ndarray) -> np.ndarray:
    return keys.view(np.uint64).reshape(-1, 2)


class NameDictionary:
    """Names -> ids 0, 1, ... in order of first appearance (see the module docstring)."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        cap = 1 << max(int(capacity - 1).bit_length(), 4)
        self._keys = np.zeros(cap, np.complex128)  # packed (k0, k1) per slot; k1 == 0: empty
        self._ids = np.full(cap, -1, np.int32)  # at most 2^31 - 1 names
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        return self._keys.nbytes + self._ids.nbytes

    def _slots(self, keys: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        h = hash_of(keys) if hashes is None else hashes
        return (h & _U64(self.capacity - 1)).view(np.int64)

    def _grow(self, need: int) -> None:
        cap = self.capacity
        while need * 2 > cap:
            cap *= 2
        if cap == self.capacity:
            return
        old_keys, old_ids = self._keys, self._ids
        self._keys = np.zeros(cap, np.complex128)
        self._ids = np.full(cap, -1, np.int32)
        step = 1 << 20  # rehash a slice at a time: temporaries stay small
        for start in range(0, len(old_keys), step):
            keys = old_keys[start : start + step]
            used = np.flatnonzero(_pairs(keys)[:, 1] != 0)
            self._ids[self._probe_insert(keys[used])] = old_ids[start : start + step][used]

    def _probe_insert(self, keys: np.ndarray, hashes: np.ndarray | None = None) -> np.ndarray:
        """Slots of the keys, inserting the missing ones (the earliest of equal keys wins a slot)."""
        mask = self.capacity - 1
        slot = self._slots(keys, hashes)
        out = np.empty(len(keys), np.int64)
        todo = None  # None: every key (the first round needs no gathers)
        while todo is None or todo.size:
            s = slot if todo is None else slot[todo]
            mine = keys if todo is None else keys[todo]
            held = self._keys[s]
            empty = np.flatnonzero(_pairs(held)[:, 1] == 0)
            if empty.size:  # claim empty slots; written in reverse, so the earliest writer stays
                e = empty[::-1]
                self._keys[s[e]] = mine[e]
                held[empty] = self._keys[s[empty]]
            hp, mp = _pairs(held), _pairs(mine)
            found = (hp[:, 0] == mp[:, 0]) & (hp[:, 1] == mp[:, 1])
            if todo is None:
                out[:] = s
                todo = np.flatnonzero(~found)
            else:
                out[todo[found]] = s[found]
                todo = todo[~found]
            slot[todo] = (slot[todo] + 1) & mask
        return out

    def encode(self, arr: pa.Array, add: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n] int64, positions of the names added) for a string array. New names get the
        next ids in order of first appearance; `arr.take(positions)` are the new names in id
        order. With add=False unknown names get -1 and nothing is added."""
        return self.encode_keys(keys_of(arr), add)

    def encode_keys(self, keys: np.ndarray, add: bool = True, hashes: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode` for keys already computed by `keys_of` (and their `hash_of`), e.g. in a
        reading thread."""
        n = len(keys)
        if not (_pairs(keys)[:, 1] != 0).all():
            raise ValueError(f"empty name at position {int(np.argmin(_pairs(keys)[:, 1] != 0))}")
        ids, added = np.empty(n, np.int64), []
        pos = 0
        while pos < n:  # pieces that fit below half load (else grow first)
            m = min(n - pos, max(self.capacity // 2 - self._size, 1 << 16))
            if add:
                self._grow(self._size + m)
                h = None if hashes is None else hashes[pos : pos + m]
                ids[pos : pos + m], new = self._insert(keys[pos : pos + m], h)
                added.append(new + pos)
            else:
                ids[pos : pos + m] = self._lookup(keys[pos : pos + m])
            pos += m
        return ids, (np.concatenate(added) if added else np.zeros(0, np.int64))

    def _insert(self, keys: np.ndarray, hashes: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        slot = self._probe_insert(keys, hashes)
        ids = self._ids[slot].astype(np.int64)
        new = np.flatnonzero(ids < 0)
        if not new.size:
            return ids, new
        # first appearances of the new names, in order: positions whose slot has no id yet,
        # deduplicated by slot (np.unique keeps the first index of each)
        _, first = np.unique(slot[new], return_index=True)
        pos = new[np.sort(first)]
        if self._size + pos.size >= 1 << 31:
            raise OverflowError("more than 2^31 - 1 names")
        self._ids[slot[pos]] = np.arange(self._size, self._size + pos.size)
        self._size += pos.size
        ids[new] = self._ids[slot[new]]
        return ids, pos

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        mask = self.capacity - 1
        slot = self._slots(keys)
        out = np.full(len(keys), -1, np.int64)
        todo = np.arange(len(keys))
        while todo.size:
            s = slot[todo]
            hp, mp = _pairs(self._keys[s]), _pairs(keys[todo])
            found = (hp[:, 0] == mp[:, 0]) & (hp[:, 1] == mp[:, 1])
            out[todo[found]] = self._ids[s[found]]
            todo = todo[~found & (hp[:, 1] != 0)]
            slot[todo] = (slot[todo] + 1) & mask
        return out
