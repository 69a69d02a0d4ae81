import numpy as np
import pytest

from genba.types import SampleBatch, TagSpec


def test_from_columns_converts_dtypes_and_defaults_quality() -> None:
    b = SampleBatch.from_columns(tag_ids=[3, 4], ts_ns=[1, 2], values=[1, 2])
    assert b.tag_ids.dtype == np.int32
    assert b.ts_ns.dtype == np.int64
    assert b.values.dtype == np.float64
    assert b.quality.tolist() == [0, 0]


def test_mismatched_lengths_name_the_column() -> None:
    with pytest.raises(ValueError, match="ts_ns has 1"):
        SampleBatch.from_columns(tag_ids=[1, 2], ts_ns=[1], values=[1.0, 2.0])


def test_wrong_dtype_points_to_from_columns() -> None:
    with pytest.raises(TypeError, match="from_columns"):
        SampleBatch(
            np.array([1], dtype=np.int64),
            np.array([1], dtype=np.int64),
            np.array([1.0]),
            np.array([0], dtype=np.uint8),
        )


def test_concat_and_select_keep_rows_aligned() -> None:
    a = SampleBatch.from_columns(tag_ids=[1, 2], ts_ns=[10, 20], values=[1.0, 2.0])
    b = SampleBatch.from_columns(tag_ids=[3], ts_ns=[30], values=[3.0], quality=[2])
    c = SampleBatch.concat([a, b])
    assert c.tag_ids.tolist() == [1, 2, 3]
    assert c.quality.tolist() == [0, 0, 2]
    picked = c.select(c.values > 1.5)
    assert picked.ts_ns.tolist() == [20, 30]
    assert len(SampleBatch.concat([])) == 0


def test_tagspec_merge_prefers_the_other_sides_filled_fields() -> None:
    device = TagSpec("s/a/l/m/t", unit="C", description="from device", high=100.0)
    config = TagSpec("s/a/l/m/t", unit="degC", low=0.0)
    merged = device.merged(config)
    assert (merged.unit, merged.description, merged.low, merged.high) == (
        "degC",
        "from device",
        0.0,
        100.0,
    )
