"""Name dictionaries: strings -> contiguous ids in order of first appearance, batch after batch.

The importer sees hundreds of millions of names in Arrow batches; a dictionary that lives across
batches lets it read the text once. Names are keyed by 128 bits computed from their bytes: names of
up to 15 bytes by their bytes and length (exact), longer names by a 120-bit hash (two names collide
with probability about n² / 2^121: none in any real graph). The keys sit in one open-addressing
table (linear probing, load <= 1/2), a slot of 32 bytes holding the key and its id, so a lookup is
one cache miss. Keys, hashes, lookups and inserts are compiled loops (numba, `nogil`: reading
threads compute keys while the main thread inserts), one pass over the names each. The dictionary
keeps keys, not names: callers keep the new names that `encode` returns (the importer streams them
to disk), so memory is 32 bytes a slot, 64 to 128 bytes per name.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

_U64 = np.uint64
_LONG = _U64(0xFF << 56)  # top byte of the second key word of hashed (>= 16 byte) names
_LOW56 = _U64((1 << 56) - 1)
_M1, _M2 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53)
_GOLD, _SEED1 = _U64(0x9E3779B97F4A7C15), _U64(0xD6E8FEB86659FD93)
_FNV, _C2 = _U64(0x100000001B3), _U64(0xC2B2AE3D27D4EB4F)
_S33, _S56, _ONE, _ZERO = _U64(33), _U64(56), _U64(1), _U64(0)
MAX_NAMES = (1 << 31) - 1
_jit = numba.njit(nogil=True, cache=True)


@_jit
def _fmix(x):
    """MurmurHash3's 64-bit finaliser (a bijection of uint64)."""
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


@_jit
def _word(data, pos, count):
    """The `count` (<= 8) bytes at data[pos:], little-endian, as a uint64."""
    w = _ZERO
    for j in range(count):
        w |= _U64(data[pos + j]) << _U64(8 * j)
    return w


@_jit
def _keys_kernel(offsets, lo, data, out):
    """out[i] = (k0, k1) of name i: bytes data[offsets[i] - lo : offsets[i + 1] - lo]."""
    for i in range(len(offsets) - 1):
        start, n = offsets[i] - lo, offsets[i + 1] - offsets[i]
        if n < 16:
            out[i, 0] = _word(data, start, min(n, 8))
            out[i, 1] = _word(data, start + 8, max(n - 8, 0)) | (_U64(n) << _S56)
            continue
        h0, h1 = _fmix(_U64(n) ^ _GOLD), _fmix(_U64(n) ^ _SEED1)
        for k in range((n + 7) // 8):
            w = _word(data, start + 8 * k, min(n - 8 * k, 8))
            h0 = _fmix(h0 * _FNV + w)
            h1 = _fmix((h1 ^ w) * _C2 + _U64(k + 1))
        out[i, 0] = h0
        out[i, 1] = (h1 & _LOW56) | _LONG


@_jit
def _hash_kernel(pairs, out):
    for i in range(len(pairs)):
        out[i] = _fmix(pairs[i, 0] * _GOLD + pairs[i, 1])


@_jit
def _insert_kernel(table, size, limit, pairs, hashes, ids, new):
    """Ids of pairs[i] (inserting missing keys with ids size, size + 1, ...) until `limit` names;
    positions of the inserted keys go to `new`. Returns (size, keys done, inserted)."""
    mask = _U64(len(table) - 1)
    added = 0
    for i in range(len(pairs)):
        a, b = pairs[i, 0], pairs[i, 1]
        s = hashes[i] & mask
        while True:
            held = table[s, 1]
            if held == _ZERO:
                if size >= limit:
                    return size, i, added
                table[s, 0], table[s, 1], table[s, 2] = a, b, _U64(size)
                ids[i] = size
                new[added] = i
                size += 1
                added += 1
                break
            if held == b and table[s, 0] == a:
                ids[i] = table[s, 2]
                break
            s = (s + _ONE) & mask
    return size, len(pairs), added


@_jit
def _lookup_kernel(table, pairs, hashes, ids):
    """Ids of pairs[i], -1 where absent."""
    mask = _U64(len(table) - 1)
    for i in range(len(pairs)):
        a, b = pairs[i, 0], pairs[i, 1]
        s = hashes[i] & mask
        ids[i] = -1
        while True:
            held = table[s, 1]
            if held == _ZERO:
                break
            if held == b and table[s, 0] == a:
                ids[i] = table[s, 2]
                break
            s = (s + _ONE) & mask


@_jit
def _rehash_kernel(old, table):
    mask = _U64(len(table) - 1)
    for i in range(len(old)):
        if old[i, 1] == _ZERO:
            continue
        s = _fmix(old[i, 0] * _GOLD + old[i, 1]) & mask
        while table[s, 1] != _ZERO:
            s = (s + _ONE) & mask
        table[s, :3] = old[i, :3]


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, int, np.ndarray]:
    """(offsets [n + 1] int32/int64, first offset, data bytes) of a string array."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_binary(arr.type)
            or pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)):
        raise TypeError(f"expected a string array, got {arr.type}")
    large = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    n = len(arr)
    _, off_buf, data_buf = arr.buffers()
    if off_buf is None:  # an empty array
        return np.zeros(1, np.int64), 0, np.zeros(0, np.uint8)
    off = np.frombuffer(off_buf, np.int64 if large else np.int32, n + 1, arr.offset * (8 if large else 4))
    lo, hi = int(off[0]), int(off[-1])
    data = np.frombuffer(data_buf, np.uint8, hi - lo, lo) if data_buf is not None and hi > lo \
        else np.zeros(0, np.uint8)
    return off, lo, data


def name_keys(arr: pa.Array) -> np.ndarray:
    """128-bit keys [n, 2] uint64 (k0, k1) of the names of a string array; k1 is never 0 for a
    non-empty name (its top byte is the length, or 0xFF for hashed names)."""
    off, lo, data = string_buffers(arr)
    out = np.empty((len(off) - 1, 2), np.uint64)
    _keys_kernel(off, lo, data, out)
    return out


def keys_of(arr: pa.Array) -> np.ndarray:
    """The keys [n] of the names of a string array, one 16-byte item each (complex128 is only a
    carrier: numpy gathers 16-byte items fast; keys are compared as uint64 pairs, never as floats).
    Pure; safe in any thread."""
    return name_keys(arr).view(np.complex128).reshape(-1)


def hash_of(keys: np.ndarray) -> np.ndarray:
    """64-bit hashes [n] of keys from `keys_of` (what places them in the table; pure, any thread)."""
    out = np.empty(len(keys), np.uint64)
    _hash_kernel(_pairs(keys), out)
    return out


def _pairs(keys: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(keys).view(np.uint64).reshape(-1, 2)


class NameDictionary:
    """Names -> ids 0, 1, ... in order of first appearance (see the module docstring)."""

    def __init__(self, capacity: int = 1 << 16, max_load: float = 0.5) -> None:
        """max_load: the share of slots filled before the table doubles (0.5; up to 0.875 trades
        a few more probes for half the memory: 86M names take 4.3 GB at 0.75, 8.6 GB at 0.5)."""
        if not 0.1 <= max_load <= 0.875:
            raise ValueError(f"max_load must be in [0.1, 0.875], got {max_load}")
        cap = 1 << max(int(capacity - 1).bit_length(), 4)
        self._table = np.zeros((cap, 4), np.uint64)  # per slot: k0, k1, id, 0; k1 == 0: empty
        self._size = 0
        self.max_load = max_load

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        return len(self._table)

    @property
    def nbytes(self) -> int:
        return self._table.nbytes

    def _grow(self) -> None:
        old = self._table
        self._table = np.zeros((2 * len(old), 4), np.uint64)
        _rehash_kernel(old, self._table)

    def encode(self, arr: pa.Array, add: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n] int64, positions of the names added) for a string array. New names get the
        next ids in order of first appearance; `arr.take(positions)` are the new names in id
        order. With add=False unknown names get -1 and nothing is added."""
        return self.encode_keys(keys_of(arr), add)

    def encode_keys(self, keys: np.ndarray, add: bool = True, hashes: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode` for keys already computed by `keys_of` (and their `hash_of`), e.g. in a
        reading thread."""
        pairs = _pairs(keys)
        n = len(pairs)
        if n and not (pairs[:, 1] != 0).all():
            raise ValueError(f"empty name at position {int(np.argmin(pairs[:, 1] != 0))}")
        hashes = hash_of(keys) if hashes is None else hashes
        ids = np.empty(n, np.int64)
        if not add:
            _lookup_kernel(self._table, pairs, hashes, ids)
            return ids, np.zeros(0, np.int64)
        new, added, done = np.empty(n, np.int64), 0, 0
        while done < n:  # below max_load; at it, grow and go on
            limit = min(int(self.capacity * self.max_load), MAX_NAMES)
            self._size, step, k = _insert_kernel(self._table, self._size, limit, pairs[done:],
                                                 hashes[done:], ids[done:], new[added:])
            new[added : added + k] += done
            added += k
            done += step
            if done < n:
                if self._size >= MAX_NAMES:
                    raise OverflowError(f"more than {MAX_NAMES} names")
                self._grow()
        return ids, new[:added]
