"""Rows read into Python are the same with and without pandas (the server does not depend on it;
pyarrow uses it for nanosecond timestamps when it can import it)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pyarrow as pa

from tests.builders.processes import without_pandas
from tokentrace.store.python_rows import exact_rows, python_rows, restore

NS = 1_764_547_200_123_456_789  # 2025-12-01T00:00:00.123456789Z: not a whole microsecond


def _table() -> pa.Table:
    return pa.table(
        {
            "start_time": pa.array([NS, None], pa.timestamp("ns", tz="UTC")),
            "end_time": pa.array([NS + 1, NS + 2], pa.timestamp("ns")),
            "name": ["a", "b"],
        }
    )


def test_nanosecond_timestamps_read_as_microsecond_datetimes():
    rows = python_rows(_table())
    assert rows[0]["start_time"] == datetime(2025, 12, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert type(rows[0]["start_time"]) is datetime  # not a pandas Timestamp where pandas is installed
    assert rows[1]["start_time"] is None
    assert rows[1]["end_time"] == datetime(2025, 12, 1, 0, 0, 0, 123456)  # naive stays naive
    assert rows[1]["name"] == "b"


def test_rows_edited_and_restored_keep_their_nanoseconds():
    rows, schema = exact_rows(_table())
    assert rows[0]["start_time"] == NS
    rows[0]["name"] = "edited"
    again = restore(rows, schema)
    assert again.schema == _table().schema
    assert again.column("start_time").cast(pa.int64()).to_pylist() == [NS, None]
    assert again.column("end_time").cast(pa.int64()).to_pylist() == [NS + 1, NS + 2]
    assert again.column("name").to_pylist() == ["edited", "b"]


def test_the_same_rows_in_a_process_without_pandas():
    script = f"""
import pyarrow as pa
try:
    import pandas
except ImportError:
    pass
else:
    raise SystemExit("pandas was importable")
from tokentrace.store.python_rows import exact_rows, python_rows, restore
table = pa.table({{"t": pa.array([{NS}], pa.timestamp("ns", tz="UTC"))}})
try:
    table.to_pylist()
except ValueError:
    pass  # what the server met before: pyarrow cannot give nanoseconds to Python without pandas
else:
    raise SystemExit("to_pylist did not raise without pandas")
print(python_rows(table)[0]["t"].isoformat())
rows, schema = exact_rows(table)
print(restore(rows, schema).column("t").cast(pa.int64())[0].as_py())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env=without_pandas(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.split() == ["2025-12-01T00:00:00.123456+00:00", str(NS)]
