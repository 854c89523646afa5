"""Figures over repeats: mean, standard error and 95% interval, and the paired comparison with `random`.

A run with ``repeats: R`` evaluates the same setting R times with the seeds
seed..seed+R-1: each repeat draws new label noise (debugging), new data
(the digits) and a new random order or sample. These are replicates, so a
strategy's headline metric is summarized over them (`describe`), and every
strategy is compared with the baseline `BASELINE` repeat by repeat
(`paired_comparison`): in a repeat both saw the same noise and the same data,
which is what makes the comparison paired.

Every view reads these figures from one function, `summarize_setting`: a
plain run's results.json, each setting of a sweep, the pages, Compare and the
CLI, so the same cells give the same numbers everywhere. Each family of tests
-- the methods compared with random on one metric, over one task or over the
mean of the tasks -- gets Holm-adjusted p-values (`holm`), and `significant`
is read from the adjusted one.

The field names below are the ones results.json uses (docs/results.md lists
them); each is defined here once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The level of every interval, and the p-value under which a difference is called significant.
CONFIDENCE = 0.95
SIGNIFICANCE_LEVEL = 1 - CONFIDENCE
#: The strategy every other one is compared with.
BASELINE = "random"

# A metric summarized over repeats: {MEAN, SEM, CI_LOW, CI_HIGH, N}.
MEAN, SEM, CI_LOW, CI_HIGH, N = "mean", "sem", "ci_low", "ci_high", "n"
# A paired comparison with the baseline: {DIFFERENCE, CI_LOW, CI_HIGH, P_VALUE, SIGNIFICANT, N, TEST};
# the difference is strategy minus baseline, its interval under CI_LOW and CI_HIGH.
DIFFERENCE, P_VALUE, SIGNIFICANT, TEST = "mean_difference", "p_value", "significant", "test"
PAIRED_TEST = "paired t-test"
#: The Holm-adjusted p-value of a comparison, within its family (the methods compared with random on one metric
#: over one task, or over the mean of the tasks); SIGNIFICANT is read from it.
P_ADJUSTED = "p_holm"
#: An entry's mean curve and its band over repeats (debugging): {fixes, mean, ci_low, ci_high, n}; and the
#: key of a replicate's one curve, {fixes, accuracy}.
CURVE_OVER_REPEATS, CURVE = "curve_over_repeats", "curve"

#: A method's cost in a repeat (the seconds it took to produce its answer), and the key of its summary over the
#: repeats ({mean, sem, ci_low, ci_high, n}, never tested: the figures against time show it).
COST, COST_OVER_REPEATS = "time_s", "time_over_repeats"

#: The keys of a strategy's entry in results.json that hold these figures: {metric: summary} and
#: {metric: comparison} (the latter absent for the baseline itself and when the run has no baseline).
OVER_REPEATS, VS_BASELINE = "over_repeats", f"vs_{BASELINE}"
#: A method that does not compete with the others, shown but not ranked: a task's entry whose training set is
#: larger than train_size (the selection track's budget), an ``overall`` entry flagged ``"ranked": false``.
OVER_BUDGET, RANKED = "over_budget", "ranked"


def _numbers(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values]


def _t_half_width(sd: float, n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n))


def describe(values: Sequence[float]) -> dict[str, float | int | None]:
    """{mean, sem, ci_low, ci_high, n} of one metric over n repeats.

    sem is the sample standard deviation (ddof 1) over sqrt(n); the interval
    is Student's t-interval mean +- t(0.975, n-1) x sem. With one repeat
    there is no spread to estimate: sem and the interval are None.
    """
    numbers = _numbers(values)
    if not numbers:
        raise ValueError("no values to describe")
    n = len(numbers)
    mean = sum(numbers) / n
    if n < 2:
        return {MEAN: mean, SEM: None, CI_LOW: None, CI_HIGH: None, N: n}
    sd = math.sqrt(sum((x - mean) ** 2 for x in numbers) / (n - 1))
    half = _t_half_width(sd, n)
    return {MEAN: mean, SEM: sd / math.sqrt(n), CI_LOW: mean - half, CI_HIGH: mean + half, N: n}


def paired_comparison(values: Sequence[float], baseline: Sequence[float]) -> dict[str, Any]:
    """A strategy against the baseline, repeat by repeat: {mean_difference, ci_low, ci_high, p_value,
    significant, n, test}, the difference being strategy minus baseline.

    The test is Student's paired t-test (scipy.stats.ttest_rel), two-sided, on
    the per-repeat differences, and the interval is the t-interval of their
    mean. Why this test: the pairs share a repeat's noise and data, so the
    differences remove what the repeats have in common; and with the few
    repeats a run can afford, a rank test cannot reject at all -- the exact
    Wilcoxon signed-rank test's smallest two-sided p-value is 2 / 2**n,
    0.0625 for 5 repeats -- while the t-test uses the size of the differences,
    not only their signs. Its assumption, roughly normal differences, suits
    metrics that are averages over many test points or budgets.

    Degenerate cases: with fewer than 2 repeats nothing is tested (p_value
    and significant None); when every difference is the same, the test is
    exact: p 1 for no difference, 0 for a constant non-zero one.
    """
    a, b = _numbers(values), _numbers(baseline)
    if len(a) != len(b):
        raise ValueError(f"paired values need the same repeats: {len(a)} against {len(b)}")
    differences = [x - y for x, y in zip(a, b)]
    n = len(differences)
    summary = describe(differences) if differences else {MEAN: None, CI_LOW: None, CI_HIGH: None}
    out = {DIFFERENCE: summary[MEAN], CI_LOW: summary[CI_LOW], CI_HIGH: summary[CI_HIGH], P_VALUE: None,
           P_ADJUSTED: None, SIGNIFICANT: None, N: n, TEST: PAIRED_TEST}
    if n < 2:
        return out
    if max(differences) - min(differences) <= 1e-12 * max(1.0, abs(differences[0])):
        p_value = 1.0 if abs(differences[0]) <= 1e-12 else 0.0
    else:
        from scipy import stats

        p_value = float(stats.ttest_rel(a, b).pvalue)
    # Alone, a comparison is its own family; `adjust_family` replaces both for a family of several.
    out.update({P_VALUE: p_value, P_ADJUSTED: p_value, SIGNIFICANT: p_value < SIGNIFICANCE_LEVEL})
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None: not tested, left out of the family).

    The k-th smallest of m p-values becomes max over j <= k of min(1, (m - j + 1) p_(j)): rejecting where the
    adjusted value is under 0.05 keeps the chance of any false rejection in the family under 0.05, whatever
    the dependence between the tests (they share random's figures), and it is never less powerful than
    Bonferroni's.
    """
    tested = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def adjust_family(comparisons: Sequence[dict]) -> None:
    """Give a family of comparisons (dicts of `paired_comparison`) their Holm-adjusted p-values and read
    `significant` from them, in place."""
    for comparison, adjusted in zip(comparisons, holm([c.get(P_VALUE) for c in comparisons])):
        comparison[P_ADJUSTED] = adjusted
        comparison[SIGNIFICANT] = None if adjusted is None else adjusted < SIGNIFICANCE_LEVEL


def attach(entries_by_repeat: Mapping[str, Sequence[Mapping[str, Any]]], metrics: Sequence[str]) -> dict:
    """{strategy: {OVER_REPEATS: {metric: describe}, VS_BASELINE: {metric: paired}}} of strategies whose
    entries are given per repeat, in repeat order (`entries_by_repeat[name][r][metric]`); a strategy whose
    entries carry a `CURVE` ({fixes, accuracy}) of equal length also gets `CURVE_OVER_REPEATS`.

    A strategy missing from a repeat is summarized over the repeats it has and
    compared on the repeats both have. A metric that is None in a repeat (undefined there, e.g. a detection
    metric of a task with no flipped label) is summarized over the repeats where it has a value, and left out
    of both dicts when it has none. No VS_BASELINE for the baseline itself or when there is none. The p-values
    are not adjusted yet: `summarize_setting` does.
    """
    out: dict[str, dict] = {}
    baseline = entries_by_repeat.get(BASELINE)
    for name, entries in entries_by_repeat.items():
        defined = {m: [e[m] for e in entries if e[m] is not None] for m in metrics}
        record: dict[str, dict] = {OVER_REPEATS: {m: describe(values) for m, values in defined.items() if values}}
        if baseline is not None and name != BASELINE:
            pairs = {m: _paired(entries, baseline, m) for m in metrics}
            record[VS_BASELINE] = {m: paired_comparison(*pair) for m, pair in pairs.items() if pair[0]}
        costs = [e[COST] for e in entries if e.get(COST) is not None]
        if costs:
            record[COST_OVER_REPEATS] = describe(costs)
        curves = [e[CURVE] for e in entries if e.get(CURVE)]
        if curves and len({len(c["accuracy"]) for c in curves}) == 1:
            record[CURVE_OVER_REPEATS] = {"fixes": list(curves[0]["fixes"]),
                                          **describe_curves([c["accuracy"] for c in curves])}
        out[name] = record
    return out


def _paired(entries: Sequence[Mapping], baseline: Sequence[Mapping], metric: str) -> tuple[list, list]:
    pairs = [(e[metric], b[metric]) for e, b in zip(entries, baseline)
             if e is not None and b is not None and e.get(metric) is not None and b.get(metric) is not None]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _adjust_each_metric(records: Mapping[str, Mapping], metrics: Sequence[str]) -> None:
    """Holm within each metric over the strategies of one scope (a task, or the mean over the tasks)."""
    for metric in metrics:
        adjust_family([record[VS_BASELINE][metric] for record in records.values()
                       if metric in (record.get(VS_BASELINE) or {})])


def _mean_over_tasks(values: Sequence[float | None]) -> float | None:
    """The mean of one repeat's values over the tasks; None when a task has none, so that every mean a
    strategy is summarized and paired on is over the same tasks."""
    return None if any(v is None for v in values) else sum(_numbers(values)) / len(values)


def summarize_setting(replicates: Mapping[str, Mapping[str, Sequence[Mapping]]],
                      metrics: Sequence[str]) -> dict[str, Any]:
    """The statistics of one setting: {"tasks": {task: {strategy: record}}, "overall": {strategy: record},
    "repeats": n}, each record as `attach` gives it, with Holm-adjusted p-values per metric and scope.

    `replicates` is {task: {strategy: [its figures in each repeat, in order]}}.
    ``overall`` holds each strategy's mean over the tasks -- per repeat, the
    mean over the tasks, then summarized over the repeats -- for the strategies
    of every task; where a metric is None on a task in a repeat, that repeat's
    mean is None too and so left out of the summary and the test, like a None
    of a single task. This is the one function behind every figure over
    repeats: a plain run, each setting of a sweep, the pages and the CLI.
    """
    tasks_out: dict[str, dict] = {}
    repeats = 1
    for task, by_name in replicates.items():
        records = attach(by_name, metrics)
        _adjust_each_metric(records, metrics)
        tasks_out[task] = records
        repeats = max([repeats, *(len(entries) for entries in by_name.values())])
    tasks = list(replicates.values())
    shared = [name for name in (tasks[0] if tasks else {}) if all(name in by_name for by_name in tasks)]
    means = {name: [{m: _mean_over_tasks([by_name[name][r].get(m) for by_name in tasks]) for m in (*metrics, COST)}
                    for r in range(min(len(by_name[name]) for by_name in tasks))]
             for name in shared}
    overall = attach(means, metrics)
    _adjust_each_metric(overall, metrics)
    return {"tasks": tasks_out, "overall": overall, "repeats": repeats}


def single_repeat(task_results: Mapping[str, Mapping]) -> dict[str, dict[str, list[Mapping]]]:
    """The replicates of a run of one repeat: {task: {strategy: [its entry]}}."""
    return {task: {name: [entry] for name, entry in (result.get("strategies") or {}).items()}
            for task, result in task_results.items()}


def add_to_results(results: dict, replicates: Mapping[str, Mapping[str, Sequence[Mapping]]],
                   metrics: Sequence[str], *, ranked: Any = None) -> dict:
    """Write `summarize_setting`'s figures into results.json's content `results` (in place; returned).

    Every strategy entry of ``results["tasks"]`` gets `OVER_REPEATS`,
    `VS_BASELINE` and, for curves over several repeats, `CURVE_OVER_REPEATS`;
    ``results["overall"]`` the same for the mean over the tasks;
    ``results["repeats"]`` the number of repeats. `ranked(name)`, when given,
    says whether a strategy competes (the others are kept in ``overall`` but
    flagged ``"ranked": false``).
    """
    setting = summarize_setting(replicates, metrics)
    for task, records in setting["tasks"].items():
        for name, record in records.items():
            if setting["repeats"] < 2:
                record.pop(CURVE_OVER_REPEATS, None)  # the entry's own curve is the one repeat's
            results["tasks"][task]["strategies"][name].update(record)
    if ranked is not None:
        for name, record in setting["overall"].items():
            record[RANKED] = bool(ranked(name))
    results["overall"] = setting["overall"]
    results["repeats"] = setting["repeats"]
    return results


# --- reading the figures back (CLI, pages) -------------------------------------------------------

def is_ranked(entry: Mapping[str, Any]) -> bool:
    """Whether a results.json entry competes with the others (see `OVER_BUDGET`)."""
    return not entry.get(OVER_BUDGET) and entry.get(RANKED) is not False


def summary_of(entry: Mapping[str, Any] | None, metric: str) -> Mapping[str, Any] | None:
    """The summary over repeats of `metric` in a results.json entry, or None (results from before repeats)."""
    return ((entry or {}).get(OVER_REPEATS) or {}).get(metric)


def mean_of(entry: Mapping[str, Any] | None, metric: str) -> float | None:
    """`metric`'s mean over the repeats of a results.json entry (its one value when it has no summary)."""
    summary = summary_of(entry, metric)
    value = summary[MEAN] if summary else (entry or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def comparison_of(entry: Mapping[str, Any] | None, metric: str) -> Mapping[str, Any] | None:
    """The paired comparison with the baseline of `metric` in a results.json entry, or None."""
    return ((entry or {}).get(VS_BASELINE) or {}).get(metric)


def half_width(summary: Mapping[str, Any] | None) -> float | None:
    """Half the width of a summary's or comparison's interval (None when it has none)."""
    if not summary or summary.get(CI_LOW) is None or summary.get(CI_HIGH) is None:
        return None
    return (summary[CI_HIGH] - summary[CI_LOW]) / 2


def format_estimate(value: float | None, summary: Mapping[str, Any] | None = None, digits: int = 3) -> str:
    """``0.412 ± 0.031`` (mean and the interval's half width), or ``0.412`` without an interval."""
    if value is None:
        return "-"
    width = half_width(summary)
    return f"{value:.{digits}f}" if width is None else f"{value:.{digits}f} ± {width:.{digits}f}"


def adjusted_p(comparison: Mapping[str, Any]) -> float | None:
    """The Holm-adjusted p-value of a comparison (its raw one in results from before the adjustment)."""
    return comparison.get(P_ADJUSTED, comparison.get(P_VALUE))


def no_test_reason(comparison: Mapping[str, Any] | None) -> str:
    """Why a comparison has no p-value: ``no test: 1 repeat``."""
    n = (comparison or {}).get(N) or 0
    return f"no test: {n} repeat" + ("" if n == 1 else "s")


def format_comparison(comparison: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``-0.120 [-0.180, -0.060] p=0.002 (Holm 0.004)``, ``+0.010 [-0.050, 0.070] p=0.62 (Holm 1), not
    significant`` or ``+0.010 (no test: 1 repeat)``."""
    if not comparison or comparison.get(DIFFERENCE) is None:
        return ""
    text = f"{comparison[DIFFERENCE]:+.{digits}f}"
    if comparison.get(CI_LOW) is not None:
        text += f" [{comparison[CI_LOW]:+.{digits}f}, {comparison[CI_HIGH]:+.{digits}f}]"
    if comparison.get(P_VALUE) is None:
        return text + f" ({no_test_reason(comparison)})"
    text += f" p={comparison[P_VALUE]:.2g} (Holm {adjusted_p(comparison):.2g})"
    return text if comparison[SIGNIFICANT] else text + ", not significant"


def describe_curves(curves: Sequence[Sequence[float]]) -> dict[str, Any]:
    """The pointwise mean and 95% t-interval of equally long curves (one per repeat): {mean, ci_low, ci_high,
    n}, each a list; the interval lists are None with one curve."""
    import numpy as np

    array = np.asarray(curves, dtype=float)
    n = len(array)
    mean = array.mean(axis=0)
    if n < 2:
        return {MEAN: mean.tolist(), CI_LOW: None, CI_HIGH: None, N: n}
    half = _t_half_width(1.0, n) * array.std(axis=0, ddof=1)  # t x sd / sqrt(n), point by point
    return {MEAN: mean.tolist(), CI_LOW: (mean - half).tolist(), CI_HIGH: (mean + half).tolist(), N: n}
