#!/usr/bin/env python3
"""Figures of the orchestration: the default config through Airflow against the engine alone.

Starts what the image starts (PostgreSQL, Airflow's api-server, scheduler and
DAG processor, through scripts/runtime/airflow-env.sh and scripts/runtime/start-postgres.sh,
via tests/airflow_harness.py) and a moto S3 server, then for the default
config, alternately:

* orchestrated: the time from `pipeline.create_run` + `gateway.trigger_run`
  until the run is published (manifest `success` in runs/<id>/, synced to S3);
* engine alone: `run_benchmark` on the same file in this process (imports
  already warm, all cores, no S3): the pure engine time.

Prints each repetition, the medians and their difference, the orchestration
overhead. Target: overhead under 15 s. The first orchestrated run also
generates the dataset and uploads it to S3 (a new instance's first run); it
is shown but left out of the medians when there are more repetitions.

Usage: scripts/bench/bench_orchestration.py [--repeat N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

TARGET_OVERHEAD_S = 15.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    args = parser.parse_args()

    import boto3
    from airflow_harness import TEST_BUCKET, TEST_PREFIX, new_stack  # tests/ holds the harness
    from conftest import start_moto_server

    root = Path(tempfile.mkdtemp(prefix="bench-orchestration-"))
    moto = start_moto_server()
    stack = None
    try:
        env = moto.env()
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=TEST_BUCKET)
        stack = new_stack(root / "stack", {**env, "APPLIANCE_S3_BUCKET": TEST_BUCKET,
                                           "APPLIANCE_S3_PREFIX": TEST_PREFIX})
        started = time.perf_counter()
        stack.start()
        stack.activate()
        stack.wait_for_dag("dataperf_benchmark")
        print(f"Airflow started (PostgreSQL, api-server, scheduler, dag-processor) in "
              f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} cores, "
              f"parallelism {stack.env['APPLIANCE_AIRFLOW_PARALLELISM']}, database {stack.env['APPLIANCE_AIRFLOW_DB']}")
        return bench(stack, root, args.repeat)
    finally:
        if stack is not None:
            stack.stop()
        moto.process.terminate()
        moto.process.wait(timeout=10)
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)


def bench(stack, root: Path, repeat: int) -> int:
    from dataperf_appliance.orchestration import airflow_gateway as gateway
    from dataperf_appliance.stages import pipeline
    from dataperf_appliance.stages.local_run import run_benchmark
    from dataperf_appliance.tracks import default_params, render_task_setup

    text = render_task_setup(default_params("debugging"))
    setup_file = root / "task_setup.yml"
    setup_file.write_text(text)
    params = default_params("debugging")
    print(f"default config: {params['dataset']}, tasks {', '.join(params['tasks'])}, train_size "
          f"{params['train_size']}, strategies {', '.join(params['strategies'])}")

    # Imports of the engine warmed once, so that "engine alone" is the engine's time only.
    import dataperf_appliance.engine.debugging.debugging_task  # noqa: F401
    import dataperf_appliance.engine.debugging.debugging_plots  # noqa: F401

    orchestrated, engine = [], []
    for i in range(repeat):
        started = time.perf_counter()
        run_id = pipeline.create_run(text)
        gateway.trigger_run(run_id)
        while pipeline.run_state(run_id)["state"] not in ("success", "failed"):
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        state = pipeline.run_state(run_id)
        if state["state"] != "success":
            print(f"run {run_id} failed: {state['error']}")
            return 1
        stages = pipeline.read_manifest(run_id)["stages"]
        orchestrated.append(seconds)
        work = sum(stages[s]["seconds"] or 0 for s in ("validate", "prepare_data", "report", "publish"))
        evaluate = stages["evaluate"]
        print(f"  [{i + 1}] orchestrated: {seconds:6.1f} s trigger -> published "
              f"(stages: validate {stages['validate']['seconds']:.1f}, prepare {stages['prepare_data']['seconds']:.1f},"
              f" evaluate {_span(evaluate):.1f} wall, report {stages['report']['seconds']:.1f}, "
              f"publish {stages['publish']['seconds']:.1f}; stage work {work + _span(evaluate):.1f} s)")

        data_root = root / f"engine-data-{i}"
        started = time.perf_counter()
        run_benchmark(setup_file, root / f"engine-run-{i}", data_root=data_root)
        seconds = time.perf_counter() - started
        engine.append(seconds)
        print(f"  [{i + 1}] engine alone: {seconds:6.1f} s (run_benchmark, all cores, fresh data root)")

    counted = orchestrated[1:] if len(orchestrated) > 1 else orchestrated
    orchestrated_s, engine_s = statistics.median(counted), statistics.median(engine)
    overhead = orchestrated_s - engine_s
    print(f"orchestrated (trigger -> published, median{' of runs 2..' if len(orchestrated) > 1 else ''}"
          f"{len(orchestrated) if len(orchestrated) > 1 else ''}): {orchestrated_s:.1f} s")
    print(f"engine alone (median):                      {engine_s:.1f} s")
    print(f"orchestration overhead:                     {overhead:+.1f} s (target < {TARGET_OVERHEAD_S:.0f} s)")
    ok = overhead < TARGET_OVERHEAD_S
    print("target met" if ok else "target missed")
    return 0 if ok else 1


def _span(stage: dict) -> float:
    import datetime as dt

    if not stage.get("started_at") or not stage.get("finished_at"):
        return 0.0
    return (dt.datetime.fromisoformat(stage["finished_at"]) - dt.datetime.fromisoformat(stage["started_at"])).total_seconds()


if __name__ == "__main__":
    sys.exit(main())
