"""Security figures: the app's memory when hostile datasets are uploaded, a run's bad files, and logging in under a
guessing flood.

    python scripts/bench/bench_security.py [--login-only | --reads-only]

Uploads (skipped with --login-only): for each input, its size, the outcome (the one-line problem), the
seconds the upload took, the app process's peak memory growth (ru_maxrss of this process, which plays the
app) and the peak of the child that checks it (its VmHWM, from a second check of the same zip). The inputs
are those of the security review (issue 13): a 2M x 64 zstd parquet in a small zip, a 6M-row training-set
csv, 300 members of 1 MiB of zeros.

Reads (skipped with --login-only; alone with --reads-only, a few seconds): how the Runs page lists a run whose
manifest.json is 200 KB of nested `[` (the finding of issue "Hold under abuse"), and the peak Python memory
(tracemalloc) of zipping a run of 64 MiB of incompressible data for its download, in memory as before
(`zip_in_memory`, a BytesIO) and into a nameless temporary file as now (`run_detail.build_zip`).

Login: the app's real server (`streamlit run ui/server.py`, started by tests/login_harness.py as the
service starts it) gets N wrong guesses whose clients hang up at once (the attack of issue "Hold under
abuse"), from one address or each from its own (through a trusted proxy), then the right password from
another address; printed: the seconds until it is logged in, and the wait the server reports for its check.
"""

from __future__ import annotations

import argparse
import io
import itertools
import resource
import sys
import tempfile
import time
import tracemalloc
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # login_harness: the real server and its attackers

from login_harness import (  # noqa: E402
    PROXY_ADDRESS,
    GateServer,
    abandon_wrong_guess,
    log_in,
    log_in_as_a_person,
)

from ui_fixtures import write_run  # noqa: E402

from dataperf_appliance.interface import login_gate
from dataperf_appliance.engine.bounded import run_bounded  # noqa: E402
from dataperf_appliance.engine.settings import Settings  # noqa: E402
from dataperf_appliance.interface.ui_support import dataset_upload, run_detail, run_list


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


def upload_figures() -> None:
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


#: The zipped run's incompressible file, and the nested manifest of the finding.
ZIPPED_RUN_BYTES = 64 * 2**20
NESTED_MANIFEST = b"[" * 200_000


def zip_in_memory(folder: Path) -> bytes:
    """The whole-run zip as the Run page built it before (a BytesIO, each file read whole): the reference."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.writestr(path.relative_to(folder).as_posix(), path.read_bytes())
    return buffer.getvalue()


def traced_peak_mib(build) -> float:
    """The peak of Python's allocations (tracemalloc) while `build()` runs, in MiB."""
    tracemalloc.start()
    try:
        result = build()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if hasattr(result, "close"):
        result.close()
    return peak / 2**20


def read_figures() -> None:
    with tempfile.TemporaryDirectory() as root:
        settings = Settings(data_dir=Path(root), s3_bucket=None, s3_prefix="p/")
        write_run(settings.runs_dir, "good", scores={"random": 0.8, "loss": 0.1})
        nested = write_run(settings.runs_dir, "nested")
        (nested / "manifest.json").write_bytes(NESTED_MANIFEST)
        started = time.perf_counter()
        rows = {row.run_id: row for row in run_list.collect_runs(settings, airflow_runs=lambda: []).rows}
        seconds = time.perf_counter() - started
        print(f"a nested {len(NESTED_MANIFEST) // 1000} KB manifest.json lists as {rows['nested'].state} "
              f"({rows['nested'].error.rsplit('/', 1)[-1]}), the other run as {rows['good'].state}: "
              f"the list in {seconds * 1000:.0f} ms")
        big = settings.runs_dir / "good" / "submissions" / "big.bin"
        big.parent.mkdir(exist_ok=True)
        big.write_bytes(np.random.default_rng(0).bytes(ZIPPED_RUN_BYTES))
        folder = settings.runs_dir / "good"
        before = traced_peak_mib(lambda: zip_in_memory(folder))
        after = traced_peak_mib(lambda: run_detail.build_zip(folder, scratch=settings.data_dir))
        print(f"zip of a run of {ZIPPED_RUN_BYTES // 2**20} MiB (incompressible): peak Python memory while building "
              f"{before:.0f} MiB in memory (before), {after:.1f} MiB into a temporary file (now)")


#: Abandoned wrong guesses before the right password: the finding's six, and its "about 120".
ABANDONED_GUESSES = (6, 120)
#: Tries of the right password, each after the Retry-After of the one before.
LOGIN_ATTEMPTS = 5
#: The live flood: addresses guessing at once (more than keep the queue full), for how long, and when the owner
#: comes (once every address has failed at least once: until then each is as new a client as the owner).
FLOOD_ADDRESSES = 20
FLOOD_S = 60.0
OWNER_COMES_AFTER_S = 40.0
PASSWORD = "a long enough operator password"
PEERS = (f"127.0.2.{n}" for n in itertools.count(1))  # loopback addresses: each a client of its own


def guess_until(port: int, deadline: float, source: str, forwarded_for: str | None) -> int:
    """Wrong guesses from one client, each as soon as the gate allows (after its Retry-After); those checked."""
    checked = 0
    while time.monotonic() < deadline:
        response, _ = log_in(port, "a wrong guess", source, forwarded_for)
        if response.status == 429:
            time.sleep(min(int(response.getheader("Retry-After")), max(0.0, deadline - time.monotonic())))
        else:
            checked += response.status == 401
    return checked


def flood(server: GateServer, addresses: int, owner: str) -> None:
    """`addresses` clients guessing for FLOOD_S, each waiting for its answers; the owner logs in meanwhile."""
    deadline = time.monotonic() + FLOOD_S
    with ThreadPoolExecutor(max_workers=addresses) as pool:
        if addresses == 1:
            guessers = [pool.submit(guess_until, server.port, deadline, next(PEERS), None)]
        else:  # through the trusted proxy, each naming a client of its own
            guessers = [pool.submit(guess_until, server.port, deadline, PROXY_ADDRESS, f"198.18.{n // 250}.{n % 250}")
                        for n in range(addresses)]
        time.sleep(OWNER_COMES_AFTER_S)
        started = time.perf_counter()
        try:
            response, by_server_s, tries = log_in_as_a_person(server.port, PASSWORD, owner, LOGIN_ATTEMPTS,
                                                              time.sleep)
            owner_line = (f"{time.perf_counter() - started:.2f} s (HTTP {response.status} at try {tries}; "
                          f"{by_server_s:.2f} s by the server's account)")
        except AssertionError as refused:
            owner_line = str(refused)
        checked = sum(guesser.result() for guesser in guessers)
    print(f"{addresses} address(es) guessing for {FLOOD_S:.0f} s, each waiting for its answers: {checked} wrong "
          f"guesses checked ({checked / FLOOD_S:.2f}/s); the right password from another address after "
          f"{OWNER_COMES_AFTER_S:.0f} s: {owner_line}")


def login_figures() -> None:
    print(f"login throttle: per address {login_gate.ADDRESS_BACKOFF_FIRST_S:g} s doubling to "
          f"{login_gate.ADDRESS_BACKOFF_MAX_S:g} s; process-wide {login_gate.GLOBAL_BACKOFF_FIRST_S:g} s doubling "
          f"to {login_gate.GLOBAL_BACKOFF_MAX_S:g} s; at most {login_gate.MAX_WAITING_LOGINS} waiting")
    with tempfile.TemporaryDirectory() as root:
        server = GateServer.start(Path(root), PASSWORD)
        try:
            for guesses in ABANDONED_GUESSES:
                for spread in ("one address", "as many addresses"):
                    attacker = next(PEERS)
                    for n in range(guesses):
                        if spread == "one address":
                            abandon_wrong_guess(server.port, attacker)
                        else:  # through the trusted proxy, each guess naming a client of its own
                            abandon_wrong_guess(server.port, PROXY_ADDRESS, forwarded_for=f"203.0.{n // 250}.{n % 250}")
                    started = time.perf_counter()
                    response, by_server_s, tries = log_in_as_a_person(server.port, PASSWORD, next(PEERS),
                                                                      LOGIN_ATTEMPTS, time.sleep)
                    print(f"right password after {guesses} abandoned wrong guesses from {spread}: "
                          f"{time.perf_counter() - started:.2f} s (HTTP {response.status} at try {tries}; "
                          f"{by_server_s:.2f} s by the server's account)")
            abandoned_checked = server.log().count("failed login from")
            print(f"abandoned wrong guesses checked (the others dropped unchecked or refused 429 unread): "
                  f"{abandoned_checked} of {2 * sum(ABANDONED_GUESSES)}")
            for addresses in (1, FLOOD_ADDRESSES):
                flood(server, addresses, next(PEERS))
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--login-only", action="store_true", help="only the login figures (the uploads take minutes)")
    only.add_argument("--reads-only", action="store_true", help="only the figures of a run's bad files (seconds)")
    args = parser.parse_args(argv)
    if args.reads_only:
        read_figures()
        return 0
    if not args.login_only:
        upload_figures()
        read_figures()
    login_figures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
