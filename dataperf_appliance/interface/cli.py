"""The command line: `dataperf-appliance validate | render | run | evaluate | export | datasets | build-environments`.

Exit codes: 0 success, 1 a run failed, 2 invalid input (every error on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dataperf_appliance.engine.settings import load_settings

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def _data_root(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).resolve() if args.data_dir else load_settings().data_dir


def _validate(args: argparse.Namespace) -> int:
    from dataperf_appliance.config import ConfigError
    from dataperf_appliance.tracks import load_task_setup

    try:
        load_task_setup(Path(args.file), data_root=_data_root(args))
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    except OSError as error:
        print(f"{args.file}: {error.strerror or error}", file=sys.stderr)
        return EXIT_INVALID
    print("valid")
    return EXIT_OK


def _render(args: argparse.Namespace) -> int:
    from dataperf_appliance.config import ConfigError
    from dataperf_appliance.tracks import DEFAULT_TRACK, apply_overrides, default_params, render_task_setup

    track = next((a.split("=", 1)[1] for a in args.set if a.startswith("track=")), DEFAULT_TRACK)
    try:
        params = apply_overrides(default_params(track, args.preset),
                                 [a for a in args.set if not a.startswith("track=")])
        sys.stdout.write(render_task_setup(params))
    except (ConfigError, ValueError) as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    return EXIT_OK


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _estimate(entry: dict, metric: str) -> str:
    """A metric of a results.json entry as ``mean ± half width`` over the repeats (the value of one repeat)."""
    from dataperf_appliance.engine.stats import format_estimate, mean_of, summary_of

    return format_estimate(mean_of(entry, metric), summary_of(entry, metric))


def _versus(entry: dict, metric: str) -> str:
    from dataperf_appliance.engine.stats import comparison_of, format_comparison

    return format_comparison(comparison_of(entry, metric))


def _summary(results: dict) -> str:
    """The results as a table: per task and method the headline metrics, each headed with its direction, as
    mean ± 95% interval half width over the repeats, and the paired difference with random in the main one;
    then the means over the tasks."""
    from dataperf_appliance.config.catalog import metric_label
    from dataperf_appliance.engine.stats import BASELINE, is_ranked, mean_of
    from dataperf_appliance.tracks import track_of

    repeats = results.get("repeats", 1)
    track = track_of(results["track"])
    metrics = track.headline_metrics
    main, lower = track.main_metric, track.lower_is_better
    # A column fits its heading and a value: ``0.412 ± 0.031`` with repeats, ``0.412`` without.
    widths = {m: max(len(metric_label(m)), 13 if repeats > 1 else 5) for m in metrics}
    header = f"{'task':<12} {'method':<20} " + "  ".join(f"{metric_label(m):>{widths[m]}}" for m in metrics)
    lines = [f"{repeats} repeat(s); mean ± half width of the 95% interval over them (↓ lower is better, ↑ higher "
             f"is better); vs {BASELINE}: the paired difference in {main} [95% interval], p of a paired t-test",
             header + f" {'time_s':>8}  vs {BASELINE}"]

    def rank(item: tuple[str, dict]) -> tuple:
        return (not is_ranked(item[1]),
                (mean_of(item[1], main) or 0.0) * (1 if lower else -1), item[0])

    def line(task: str, name: str, entry: dict) -> str:
        mark = "" if is_ranked(entry) else "  (over the budget: not ranked)"
        return (f"{task:<12} {name:<20} " + "  ".join(f"{_estimate(entry, m):>{widths[m]}}" for m in metrics)
                + f" {_seconds(entry.get('time_s')):>8}  {_versus(entry, main)}{mark}")

    for task, result in results["tasks"].items():
        for name, entry in sorted(result["strategies"].items(), key=rank):
            lines.append(line(task, name, entry))
    if results.get("overall") and len(results["tasks"]) > 1:
        for name, entry in sorted(results["overall"].items(), key=rank):
            lines.append(line("(all tasks)", name, entry))
    failures = [f"{task}: {entry['method']['error']}" for task, result in results["tasks"].items()
                for entry in result["strategies"].values() if (entry.get("method") or {}).get("error")]
    if failures:
        lines += ["", "methods that failed (first repeat; the traceback is in results.json):",
                  *(f"  {failure}" for failure in failures)]
    for container in ("sweep", "replicates"):
        if container in results:
            lines += ["", _sweep_summary(results) if container == "sweep" else
                      f"every repeat's figures: {results['replicates']['table']}"]
    return "\n".join(lines)


def _sweep_summary(results: dict) -> str:
    """Every setting of the sweep, its conditions named, then each method's mean over the tasks and repeats
    of the main metric ± half its 95% interval, and its paired difference with random: the figures of the
    pages, from results.json's ``sweep.settings`` (conditions are never averaged together)."""
    from dataperf_appliance.engine.stats import BASELINE, mean_of
    from dataperf_appliance.tracks import track_of
    from dataperf_appliance.interface.ui_support import settings_view

    sweep = results["sweep"]
    track = track_of(results["track"])
    metric = track.main_metric
    lines = [f"sweep: {sweep['cells']} cells ({sweep['grid']}), table in {sweep['table']}; per setting, {metric} "
             f"over the tasks and repeats, vs {BASELINE}: paired difference, p (Holm)"]
    for setting in settings_view.settings(results):
        shown = settings_view.view(results, setting)
        lines.append(f"  {shown['setting']}:")
        ranked = sorted(shown["overall"].items(),
                        key=lambda item: (mean_of(item[1], metric) or 0.0) * (1 if track.lower_is_better else -1))
        for name, entry in ranked:
            lines.append(f"    {name:<24} {_estimate(entry, metric):>17}  {_versus(entry, metric)}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from dataperf_appliance.stages.local_run import run_benchmark
    from dataperf_appliance.config import ConfigError
    from dataperf_appliance.engine.debugging.submissions import SubmissionError
    from dataperf_appliance.engine.selection.files import TrainingSetError

    bar, progress = _progress_bar(args.quiet)

    try:
        results = run_benchmark(Path(args.file), Path(args.out), data_root=_data_root(args), n_jobs=args.jobs,
                                progress=progress)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    except (FileExistsError, FileNotFoundError, SubmissionError, TrainingSetError) as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:  # noqa: BLE001 - the CLI reports any failure plainly
        print(f"run failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bar.close()
    print(_summary(results))
    print(f"run written to {Path(args.out).resolve()}")
    return EXIT_OK


def _progress_bar(quiet: bool):
    """A tqdm bar on stderr and the `progress(done, total)` callback that moves it."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="step", desc="evaluating", file=sys.stderr, disable=quiet)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return bar, progress


def _evaluate(args: argparse.Namespace) -> int:
    from dataperf_appliance.config import ConfigError
    from dataperf_appliance.tracks import evaluate_folder
    from dataperf_appliance.engine.user_files import UserFileError

    bar, progress = _progress_bar(args.quiet)
    try:
        outcome = evaluate_folder(Path(args.dir), model=args.model, seed=args.seed, n_jobs=args.jobs,
                                  progress=progress)
    except (ConfigError, UserFileError, ValueError, OSError) as error:
        bar.close()
        print(error, file=sys.stderr)
        return EXIT_INVALID
    bar.close()
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    print(outcome.table)
    for path in outcome.written:
        print(f"written: {path}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from dataperf_appliance.config import ConfigError
    from dataperf_appliance.engine.official.export import ExportError
    from dataperf_appliance.engine.runs import check_run_id
    from dataperf_appliance.tracks import export_run
    from dataperf_appliance.engine.user_files import UserFileError

    data_root = _data_root(args)
    run_dir = Path(args.run)
    if not run_dir.is_dir():  # not a folder: a run id under <data root>/runs
        try:
            run_dir = data_root / "runs" / check_run_id(args.run)
        except ValueError as error:
            print(error, file=sys.stderr)
            return EXIT_INVALID
        if not run_dir.is_dir():
            print(f"{args.run}: no such run folder, and no run of that id in {data_root / 'runs'}", file=sys.stderr)
            return EXIT_INVALID
    try:
        export = export_run(run_dir, Path(args.out), data_root=data_root)
    except (ConfigError, ExportError, UserFileError, ValueError, OSError) as error:
        print(error, file=sys.stderr)
        return EXIT_INVALID
    for note in export.notes:
        print(f"note: {note}", file=sys.stderr)
    for folder in export.folders:
        print(f"written: {folder}")
    print(f"to reproduce the run's numbers: {export.evaluate_command.replace('DIR', '<folder>')}")
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    from dataperf_appliance.engine.datasets import list_datasets

    for entry in list_datasets(_data_root(args)):
        tasks = ", ".join(entry["tasks"][:12]) + (" ..." if len(entry["tasks"]) > 12 else "")
        print(f"{entry['name']:<14} {entry['kind']:<9} {entry['description']}\n{'':<24} tasks: {tasks}")
    return EXIT_OK


def _build_environments(args: argparse.Namespace) -> int:
    from dataperf_appliance.config.catalog import DEBUGGING_LIBRARY_METHODS
    from dataperf_appliance.engine.methods import environments, runner

    requirements = {entry.folder: runner.library_call(name).requirements
                    for name, entry in DEBUGGING_LIBRARY_METHODS.items()}
    unknown = sorted(set(args.library) - set(requirements))
    if unknown:
        print(f"error: no library {', '.join(unknown)} (the libraries: {', '.join(sorted(requirements))})",
              file=sys.stderr)
        return EXIT_INVALID
    into = Path(args.into) if args.into else _data_root(args) / environments.ENVIRONMENTS_FOLDER
    for library in args.library or sorted(requirements):
        started = time.perf_counter()
        try:
            folder = environments.prebuild(into, [requirements[library]])[0]
        except environments.EnvironmentBuildError as error:
            print(f"error: {library}: {error}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{library}: {folder} ({time.perf_counter() - started:.1f} s)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dataperf-appliance", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def with_data_dir(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", help="the data root (default: $APPLIANCE_DATA_DIR, else data/ in the appliance's folder)")
        return p

    p = with_data_dir(sub.add_parser("validate", help="check a task_setup.yml (either track); prints 'valid' or "
                                                      "every error"))
    p.add_argument("file")
    p.set_defaults(handler=_validate)

    p = sub.add_parser("render", help="print a task_setup.yml built from the defaults and --set overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a parameter, e.g. --set noise_level=0.2 --set tasks=[digit-3,digit-8]; "
                        "--set track=selection starts from the selection track's defaults; a list for "
                        "train_size, noise_level or model (--set train_size=[50,100,200]) makes a sweep; a "
                        "library method's parameter: --set method_params.data_oob.n_estimators=50")
    p.add_argument("--preset", help="start from a preset of the track instead of its defaults: arena (debugging: "
                                    "every method, DataPerf's four baselines and the libraries')")
    p.set_defaults(handler=_render)

    p = with_data_dir(sub.add_parser("run", help="validate and run a benchmark into a new run folder"))
    p.add_argument("file")
    p.add_argument("--out", required=True, help="the run folder to create")
    p.add_argument("--jobs", type=int, default=-1, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run)

    from dataperf_appliance.config.catalog import MODEL_NAMES

    p = sub.add_parser("evaluate", help="write the official result files of a folder in an official DataPerf "
                                        "layout (debugging: task_setup.yml; selection: task_setup.yaml)")
    p.add_argument("dir", help="the folder holding task_setup.yml or task_setup.yaml")
    p.add_argument("--model", choices=MODEL_NAMES, default=None,
                   help="the classifier (default: the track's official one as the appliance has it)")
    p.add_argument("--seed", type=int, default=0, help="the classifier's seed (default 0)")
    p.add_argument("--jobs", type=int, default=-1, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_evaluate)

    p = with_data_dir(sub.add_parser("export", help="write a finished run as folders the official DataPerf "
                                                    "evaluators read unchanged"))
    p.add_argument("run", help="the run's folder, or its id under <data root>/runs")
    p.add_argument("--out", required=True, help="the folder to create (it must not exist, or be empty)")
    p.set_defaults(handler=_export)

    p = with_data_dir(sub.add_parser("datasets", help="list the datasets available"))
    p.set_defaults(handler=_datasets)
    p = with_data_dir(sub.add_parser("build-environments", help="build the environments of the libraries' "
                                                                "methods now rather than at their first run"))
    p.add_argument("library", nargs="*", help="official_datascope, official_influence, pydvl_valuation "
                                              "(default: all)")
    p.add_argument("--into", help="a folder of environments built in advance, as an image's "
                                  "(APPLIANCE_PREBUILT_METHOD_ENVS); default: <data root>/method-envs")
    p.set_defaults(handler=_build_environments)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
