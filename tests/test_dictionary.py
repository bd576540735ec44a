"""Name dictionaries (jgraph/data/dictionary.py) against a Python dict: ids in order of first
appearance across batches, new names reported in id order, lookups without adding, growth."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from jgraph.data.dictionary import NameDictionary, keys_of


def _pool(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = list("ab/m0é_")
    names = ["".join(rng.choice(alphabet, size=rng.integers(1, 40))) for _ in range(n)]
    # lengths around the 7/8/15/16-byte key boundaries, multi-byte characters, NUL bytes
    names += ["a" * k for k in range(1, 34)] + ["é" * 8, "a\x00", "a\x00\x00", "/m/0abc12x"]
    return names


@pytest.mark.parametrize("capacity", [16, 1 << 16])
def test_matches_python_dict(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    pool = _pool(rng, 2000)
    d, ref = NameDictionary(capacity), {}
    for b in range(6):
        batch = [pool[i] for i in rng.integers(len(pool), size=5000)]
        arr = pa.array(["pad", *batch]).slice(1) if b % 2 else pa.array(batch)  # sliced arrays too
        ids, new = d.encode(arr)
        before = len(ref)
        expected = [ref.setdefault(x, len(ref)) for x in batch]
        np.testing.assert_array_equal(ids, expected)
        assert [batch[i] for i in new] == list(ref)[before:]
    assert len(d) == len(ref)
    ids, new = d.encode(pa.array(["never-seen-before-name", pool[0], "zz"]), add=False)
    assert ids.tolist() == [-1, ref[pool[0]], -1] and new.size == 0 and len(d) == len(ref)


def test_keys_are_exact_for_short_names_and_differ_for_long_ones() -> None:
    names = ["a", "a\x00", "ab", "b", "a" * 15, "a" * 16, "a" * 17, "x" * 300, "x" * 299 + "y"]
    keys = keys_of(pa.array(names)).view(np.uint64).reshape(-1, 2)
    assert len({tuple(k) for k in keys}) == len(names)
    assert np.all(keys[:, 1] != 0)
    assert keys_of(pa.array(names, pa.large_string())).tobytes() == keys_of(pa.array(names)).tobytes()


def test_short_names_are_keyed_by_their_bytes_and_length() -> None:
    keys = keys_of(pa.array(["a", "abcdefghij", "é"])).view(np.uint64).reshape(-1, 2)
    assert keys[0].tolist() == [0x61, 1 << 56]
    assert keys[1].tolist() == [int.from_bytes(b"abcdefgh", "little"), 0x6A69 | (10 << 56)]
    assert keys[2].tolist() == [int.from_bytes("é".encode(), "little"), 2 << 56]


def test_empty_names_are_refused() -> None:
    with pytest.raises(ValueError, match="empty name"):
        NameDictionary().encode(pa.array(["a", ""]))


def test_many_names_grow_the_table() -> None:
    d = NameDictionary(16)
    names = pa.array([f"e{i}" for i in range(200_000)])
    ids, new = d.encode(names)
    np.testing.assert_array_equal(ids, np.arange(200_000))
    assert d.capacity >= 2 * len(d)
    again, new = d.encode(names.take(pa.array(np.arange(200_000)[::-1])))
    np.testing.assert_array_equal(again, np.arange(200_000)[::-1])
    assert new.size == 0


def test_max_load_halves_the_table_for_the_same_ids() -> None:
    names = pa.array([f"/m/0{i:06d}" for i in range(3000)])
    half, dense = NameDictionary(16), NameDictionary(16, max_load=0.75)
    ids_half, _ = half.encode(names)
    ids_dense, new = dense.encode(names)
    assert np.array_equal(ids_half, ids_dense) and len(new) == 3000
    assert half.capacity == 8192 and dense.capacity == 4096  # 3000 > 4096 / 2, <= 4096 x 0.75
    assert np.array_equal(dense.encode(names, add=False)[0], ids_half)
    with pytest.raises(ValueError, match="max_load"):
        NameDictionary(max_load=0.95)
