from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pfnforge.arrow import SCHEMA_VERSION, VERSION_KEY, from_arrow, read_ipc, to_arrow, to_torch, write_ipc
from pfnforge.batch import PriorBatch
from pfnforge.errors import SchemaError


def _batch(rng: np.random.Generator, B: int = 4, R: int = 7, F: int = 3) -> PriorBatch:
    x = rng.standard_normal((B, R, F)).astype(np.float32)
    x[0, 2, 1] = np.nan  # a missing value travels as NaN
    return PriorBatch(
        x=x, y=rng.integers(0, 3, (B, R)).astype(np.float32), num_rows=R,
        num_features=np.array([3, 2, 1, 3]), num_train_rows=np.array([0, 3, 5, 7]),
        num_classes=np.array([0, 3, 3, 2]), prior=np.array(["a", "b", "a", "b"], dtype=object),
        hyperparameters={"scale": rng.random(B), "depth": np.arange(B, dtype=np.int64),
                         "kind": np.array(["x", None, "y", "x"], dtype=object),
                         "flag": np.array([True, False, True, True])},
    )


def test_round_trip_preserves_every_value_and_dtype():
    batch = _batch(np.random.default_rng(0))
    back = from_arrow(to_arrow(batch))
    assert back.x.tobytes() == batch.x.tobytes()  # NaN included, bit for bit
    for name in ("y", "num_rows", "num_features", "num_train_rows", "num_classes"):
        assert np.array_equal(getattr(back, name), getattr(batch, name))
        assert getattr(back, name).dtype == getattr(batch, name).dtype
    assert list(back.prior) == ["a", "b", "a", "b"]
    for key, values in batch.hyperparameters.items():
        assert back.hyperparameters[key].dtype == values.dtype
        assert list(back.hyperparameters[key]) == list(values)


def test_task_column_follows_num_classes():
    record_batch = to_arrow(_batch(np.random.default_rng(0)))
    assert record_batch.column("task").to_pylist() == ["regression", "classification", "classification",
                                                       "classification"]


def test_to_torch_shares_memory_with_arrow():
    record_batch = to_arrow(_batch(np.random.default_rng(1)))
    tensors = to_torch(record_batch)
    x_buffer = record_batch.column("x").flatten().flatten().buffers()[1]
    assert tensors.x.data_ptr() == x_buffer.address
    assert tensors.y.data_ptr() == record_batch.column("y").flatten().buffers()[1].address
    assert tensors.x.shape == (4, 7, 3)


def test_sliced_record_batch_converts_the_right_rows():
    batch = _batch(np.random.default_rng(2))
    sliced = to_arrow(batch).slice(1, 2)
    assert np.array_equal(to_torch(sliced).y.numpy(), batch.y[1:3])
    assert from_arrow(sliced).x.tobytes() == batch.x[1:3].tobytes()


def test_other_schema_version_is_refused_naming_both(tmp_path):
    record_batch = to_arrow(_batch(np.random.default_rng(3)))
    old = record_batch.replace_schema_metadata({VERSION_KEY: b"0"})
    with pytest.raises(SchemaError, match=rf"version 0, this pfnforge reads version {SCHEMA_VERSION}"):
        from_arrow(old)
    path = tmp_path / "old.arrow"
    write_ipc(path, [old])
    with pytest.raises(SchemaError, match=r"old\.arrow uses pfnforge batch schema version 0"):
        read_ipc(path)


def test_truncated_file_fails_naming_it(tmp_path):
    path = tmp_path / "batch.arrow"
    write_ipc(path, [to_arrow(_batch(np.random.default_rng(4)))])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SchemaError, match=r"batch\.arrow is not a readable Arrow IPC file"):
        read_ipc(path)


def test_foreign_record_batch_is_refused():
    with pytest.raises(SchemaError, match="carries no pfnforge schema version"):
        from_arrow(pa.RecordBatch.from_pydict({"x": [1.0]}))


def test_ipc_file_round_trip(tmp_path):
    batches = [to_arrow(_batch(np.random.default_rng(seed))) for seed in range(3)]
    write_ipc(tmp_path / "b.arrow", batches)
    back = read_ipc(tmp_path / "b.arrow")
    assert len(back) == 3
    for written, read in zip(batches, back, strict=True):
        assert read.schema.equals(written.schema, check_metadata=True)
        assert from_arrow(read).x.tobytes() == from_arrow(written).x.tobytes()  # NaN != NaN for equals()
        assert read.column("hyperparameters").equals(written.column("hyperparameters"))


def test_inconsistent_batch_is_rejected():
    rng = np.random.default_rng(5)
    with pytest.raises(SchemaError, match="num_train_rows must lie in"):
        PriorBatch(x=np.zeros((2, 4, 1), np.float32), y=np.zeros((2, 4), np.float32), num_rows=4,
                   num_features=1, num_train_rows=5, num_classes=0, prior="p")
    with pytest.raises(SchemaError, match="x must be a"):
        PriorBatch(x=rng.random((2, 4, 1)), y=np.zeros((2, 4), np.float32), num_rows=4,
                   num_features=1, num_train_rows=1, num_classes=0, prior="p")
