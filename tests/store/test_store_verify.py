"""Bad values, bad arrays and damaged or unfinished stores are refused with useful messages."""

from __future__ import annotations

import numpy as np
import pytest

from redundancy.store import ActivationStore, StoreError


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_item_and_sentence(tmp_path, fake, bad):
    f = fake()
    idx = f.chunks[0]
    values = f.values[idx].copy()
    values[2, 1, 3] = bad
    item = int(idx[2])
    with f.open_writer(tmp_path / "s") as writer:
        with pytest.raises(StoreError) as err:
            writer.write_chunk(0, idx, values)
        msg = str(err.value)
        assert f"item {item} (sentence {f.sentence_ids[item]}, position {f.positions[item]})" in msg
        assert "layer 1, unit 3" in msg and str(tmp_path / "s") in msg
        assert writer.done_chunks == frozenset()  # nothing committed
        writer.write_chunk(0, idx, f.values[idx])  # the corrected chunk goes through
        assert writer.done_chunks == frozenset({0})


def test_float16_overflow_is_refused(tmp_path, fake):
    f = fake(dtype="float16")
    idx = f.chunks[1]
    values = f.values[idx].copy()
    values[0, 0, 0] = 1e6
    with f.open_writer(tmp_path / "s") as writer:
        with pytest.raises(StoreError, match="overflows float16"):
            writer.write_chunk(1, idx, values)


def test_bad_chunk_arguments(tmp_path, fake):
    f = fake()
    idx = f.chunks[0]
    with f.open_writer(tmp_path / "s") as writer:
        with pytest.raises(ValueError, match="shape"):
            writer.write_chunk(0, idx, f.values[idx][:, :-1])
        with pytest.raises(ValueError, match="repeated"):
            writer.write_chunk(0, np.r_[idx[:1], idx[:-1]], f.values[idx])
        with pytest.raises(ValueError, match="lie in"):
            writer.write_chunk(0, idx + 1000, f.values[idx])
        with pytest.raises(ValueError, match="integer"):
            writer.write_chunk(0, idx.astype(float), f.values[idx])
        with pytest.raises(ValueError, match="chunk_id"):
            writer.write_chunk("0", idx, f.values[idx])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": lambda f: f.labels + 5}, "class labels must lie in"),
        ({"labels": lambda f: None}, "needs a labels array"),
        ({"labels": lambda f: f.labels[:-1]}, "one entry per item"),
        ({"sentence_ids": lambda f: f.sentence_ids + 100}, "n_sentences"),
        ({"positions": lambda f: np.zeros_like(f.positions)}, "pairs must be unique"),
        ({"positions": lambda f: f.positions.astype(float)}, "integers"),
    ],
)
def test_bad_metadata_arrays(tmp_path, fake, change, message):
    f = fake()
    ((name, make),) = change.items()
    setattr(f, name, make(f))
    with pytest.raises(ValueError, match=message):
        f.open_writer(tmp_path / "s")


def test_sentence_level_positions_must_be_zero(tmp_path, fake):
    f = fake(level="sentence")
    f.positions = f.positions + 1
    with pytest.raises(ValueError, match="positions must all be 0"):
        f.open_writer(tmp_path / "s")


def test_truncated_activations_fail_fast_verification(tmp_path, fake):
    path = fake().build(tmp_path / "s")
    file = path / "activations.npy"
    with open(file, "r+b") as fh:
        fh.truncate(file.stat().st_size - 1)
    with pytest.raises(StoreError, match="activations.npy is truncated") as err:
        ActivationStore.open(path)
    assert str(path) in str(err.value)


def test_wrong_header_fails_fast_verification(tmp_path, fake):
    f = fake()
    path = f.build(tmp_path / "s")
    np.save(path / "activations.npy", f.values[:, :2].astype(np.float32), allow_pickle=False)
    with pytest.raises(StoreError, match=r"activations.npy holds float32\[.*, 2, 4\], the manifest says"):
        ActivationStore.open(path)


@pytest.mark.parametrize("name", ["activations.npy", "labels.npy"])
def test_flipped_byte_fails_full_verification(tmp_path, fake, name):
    path = fake().build(tmp_path / "s")
    file = path / name
    data = bytearray(file.read_bytes())
    data[-3] ^= 0x10
    file.write_bytes(bytes(data))
    ActivationStore.open(path, verify="fast")  # same size, valid header: fast does not look at the bytes
    with pytest.raises(StoreError, match=f"{name} is corrupted"):
        ActivationStore.open(path, verify="full")


def test_incomplete_store_is_refused_with_counts(tmp_path, fake):
    f = fake()
    with f.open_writer(tmp_path / "s") as writer:
        f.write(writer, [0, 3])
    with pytest.raises(StoreError) as err:
        ActivationStore.open(tmp_path / "s")
    msg = str(err.value)
    assert "incomplete (2 of 4 chunks committed)" in msg
    assert "Rerun the same extract command to resume" in msg and str(tmp_path / "s") in msg


def test_missing_manifest_or_folder(tmp_path, fake):
    path = fake().build(tmp_path / "s")
    (path / "manifest.json").unlink()
    with pytest.raises(StoreError, match="no manifest.json"):
        ActivationStore.open(path)
    with pytest.raises(StoreError, match="no such folder"):
        ActivationStore.open(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="verify"):
        ActivationStore.open(path, verify="paranoid")  # type: ignore[arg-type]


def test_unreadable_manifest(tmp_path, fake):
    path = fake().build(tmp_path / "s")
    (path / "manifest.json").write_text('{"model": "x"}')
    with pytest.raises(StoreError, match="manifest.json cannot be read .*missing keys"):
        ActivationStore.open(path)


def test_missing_file(tmp_path, fake):
    path = fake().build(tmp_path / "s")
    (path / "positions.npy").unlink()
    with pytest.raises(StoreError, match="positions.npy is missing"):
        ActivationStore.open(path)
