"""Memory of the app when hostile datasets are uploaded: the review's bombs, refused, with the figures.

    python scripts/bench_security.py

For each input: its size, the outcome (the one-line problem), the seconds the
upload took, the app process's peak memory growth (ru_maxrss of this process,
which plays the app) and the peak of the child that checks it (its VmHWM,
from a second check of the same zip). The inputs are those of the
security review (issue 13): a 2M x 64 zstd parquet in a small zip, a 6M-row
training-set csv, 300 members of 1 MiB of zeros.
"""

from __future__ import annotations

import io
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dataperf_appliance.bounded import run_bounded  # noqa: E402
from dataperf_appliance.settings import Settings  # noqa: E402
from dataperf_appliance.ui_support import dataset_upload  # noqa: E402


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zstd_parquet(rows: int, dim: int) -> bytes:
    block_rows = 2**18
    block = pa.table({"encoding": pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(block_rows * dim)), dim),
                      "label": pa.array(np.zeros(block_rows, np.int64)),
                      "filename": pa.array(np.full(block_rows, "x", dtype=object))})
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, block.schema, compression="zstd") as writer:
        for _ in range(rows // block_rows):
            writer.write_table(block)
    return sink.getvalue().to_pybytes()


def child_peak_mib(data: bytes, root: Path) -> float:
    archive, work = root / "peak.zip", root / "peak"
    archive.write_bytes(data)
    work.mkdir()
    try:
        _, peak = run_bounded(dataset_upload.unpack_and_check, "peak", archive, work, with_peak=True)
    finally:
        import shutil

        shutil.rmtree(work)
        archive.unlink()
    return peak / 2**20


def debugging_split(rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"encoding": [[0.5, 1.5]] * rows, "label": [i % 2 for i in range(rows)],
                             "filename": [f"img{i}" for i in range(rows)]}), sink)
    return sink.getvalue().to_pybytes()


def hostile_inputs() -> dict[str, bytes]:
    pool = pa.table({"ImageID": ["a", "b"], "embedding": [[0.0, 1.0], [1.0, 0.0]]})
    test = pa.table({"ImageID": ["c", "d"], "embedding": [[0.0, 1.0], [1.0, 0.0]], "Confidence": [0, 1]})
    pool_bytes, test_bytes = (pa.BufferOutputStream(), pa.BufferOutputStream())
    pq.write_table(pool, pool_bytes)
    pq.write_table(test, test_bytes)
    rows = "".join(f"{i:x},1\n" for i in range(6_000_000))  # none in the pool: 6M problems
    return {
        "2M x 64 zstd parquet": zipped({"embeddings/t1_train_0.3_4.parquet": zstd_parquet(2**21, 64),
                                        "embeddings/t1_val_4.parquet": debugging_split(4),
                                        "embeddings/t1_test_4.parquet": debugging_split(4),
                                        "data/dataset_t1_train.csv": b"ImageID,hv_label\nx,0\n"}),
        "6M-row training-set csv": zipped({"pool.parquet": pool_bytes.getvalue().to_pybytes(),
                                           "test_sets/t.parquet": test_bytes.getvalue().to_pybytes(),
                                           "examples/alpha_example_set_t.csv": b"LabelName,ImageID,Confidence\nx,a,1\n",
                                           "train_sets/big.csv": ("ImageID,Confidence\n" + rows).encode()}),
        "300 x 1 MiB of zeros": zipped({f"embeddings/part{i}.parquet": bytes(2**20) for i in range(300)}),
    }


def main() -> int:
    inputs = hostile_inputs()
    print(f"{'input':<26} {'zip':>9} {'seconds':>8} {'app +MiB':>9} {'child MiB':>10}  outcome")
    with tempfile.TemporaryDirectory() as root:
        settings = Settings(data_dir=Path(root), s3_bucket=None, s3_prefix="p/")
        for index, (label, data) in enumerate(inputs.items()):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            check = dataset_upload.upload_dataset(f"up{index}", data, settings)
            seconds = time.perf_counter() - started
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            child = child_peak_mib(data, Path(root))
            outcome = "stored" if check.ok else f"refused ({len(check.problems)} problem lines): {check.problems[0][:90]}"
            print(f"{label:<26} {len(data) / 2**20:>7.1f}MB {seconds:>8.1f} {grown:>9.0f} {child:>10.0f}  {outcome}")
        left = sorted(p.name for p in settings.datasets_dir.iterdir()) if settings.datasets_dir.is_dir() else []
        print(f"left under datasets/: {left or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
