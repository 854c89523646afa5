"""Figures over repeats: the t-interval, the paired test against random, and results.json's fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from dataperf_appliance.engine import stats


def test_describe_gives_the_mean_standard_error_and_t_interval():
    values = [0.30, 0.42, 0.35, 0.51, 0.28]
    summary = stats.describe(values)
    sem = np.std(values, ddof=1) / math.sqrt(5)
    low, high = scipy_stats.t.interval(0.95, 4, loc=np.mean(values), scale=sem)
    assert summary == pytest.approx({"mean": np.mean(values), "sem": sem, "ci_low": low, "ci_high": high, "n": 5})
    assert stats.half_width(summary) == pytest.approx((high - low) / 2)


def test_one_repeat_has_no_interval():
    assert stats.describe([0.4]) == {"mean": 0.4, "sem": None, "ci_low": None, "ci_high": None, "n": 1}
    assert stats.half_width(stats.describe([0.4])) is None
    assert stats.format_estimate(0.4, stats.describe([0.4])) == "0.400"
    with pytest.raises(ValueError, match="no values"):
        stats.describe([])


def test_the_paired_comparison_is_scipys_paired_t_test():
    method = [0.20, 0.25, 0.18, 0.30, 0.22, 0.27]
    baseline = [0.50, 0.44, 0.60, 0.52, 0.47, 0.58]
    found = stats.paired_comparison(method, baseline)
    differences = np.subtract(method, baseline)
    expected = scipy_stats.ttest_rel(method, baseline)
    low, high = expected.confidence_interval(0.95)
    assert found["mean_difference"] == pytest.approx(differences.mean())
    assert (found["ci_low"], found["ci_high"]) == pytest.approx((low, high))
    assert found["p_value"] == pytest.approx(expected.pvalue) and found["significant"] is True
    assert (found["n"], found["test"]) == (6, "paired t-test")
    assert "not significant" not in stats.format_comparison(found)


def test_pairing_matters_a_shared_shift_is_not_noise():
    # Each repeat moves both methods together: unpaired, the spread would hide the constant gap of 0.02.
    shift = np.array([0.0, 0.3, -0.2, 0.25, -0.15])
    found = stats.paired_comparison(0.5 + shift + np.array([0.021, 0.019, 0.02, 0.022, 0.018]), 0.5 + shift)
    assert found["significant"] is True and found["p_value"] < 1e-4
    unpaired = scipy_stats.ttest_ind(0.52 + shift, 0.5 + shift).pvalue
    assert unpaired > 0.05


def test_a_difference_within_the_noise_is_not_significant():
    found = stats.paired_comparison([0.5, 0.3, 0.6, 0.4], [0.4, 0.5, 0.5, 0.45])
    assert found["significant"] is False and found["p_value"] >= 0.05
    assert found["ci_low"] < 0 < found["ci_high"]
    assert stats.format_comparison(found).endswith(", not significant")


def test_degenerate_comparisons():
    assert stats.paired_comparison([0.3, 0.3, 0.3], [0.3, 0.3, 0.3])["p_value"] == 1.0
    constant = stats.paired_comparison([0.4, 0.5, 0.6], [0.3, 0.4, 0.5])
    assert constant["p_value"] == 0.0 and constant["significant"] is True
    one = stats.paired_comparison([0.4], [0.5])
    assert one["p_value"] is None and one["significant"] is None and one["mean_difference"] == pytest.approx(-0.1)
    assert "no test: 1 repeat" in stats.format_comparison(one)
    with pytest.raises(ValueError, match="same repeats"):
        stats.paired_comparison([0.1, 0.2], [0.1])


def test_add_to_results_fills_every_entry_and_the_overall_means():
    values = {"t1": {"random": [0.8, 0.7, 0.9], "knn_shapley": [0.2, 0.3, 0.25]},
              "t2": {"random": [0.6, 0.9, 0.7], "knn_shapley": [0.1, 0.2, 0.3]}}
    replicates = {task: {name: [{"fraction_fixes": v, "auc": 1 - v} for v in vs] for name, vs in by.items()}
                  for task, by in values.items()}
    results = {"tasks": {task: {"strategies": {name: {"fraction_fixes": vs[0]} for name, vs in by.items()}}
                         for task, by in values.items()}}
    stats.add_to_results(results, replicates, ("fraction_fixes", "auc"), ranked=lambda name: name != "random")
    entry = results["tasks"]["t1"]["strategies"]["knn_shapley"]
    assert entry["over_repeats"]["fraction_fixes"] == stats.describe([0.2, 0.3, 0.25])
    assert entry["vs_random"]["auc"] == pytest.approx(stats.paired_comparison([0.8, 0.7, 0.75], [0.2, 0.3, 0.1]))
    assert "vs_random" not in results["tasks"]["t1"]["strategies"]["random"]
    overall = results["overall"]["knn_shapley"]
    assert overall["over_repeats"]["fraction_fixes"]["mean"] == pytest.approx(np.mean([0.15, 0.25, 0.275]))
    assert overall["vs_random"]["fraction_fixes"] == pytest.approx(
        stats.paired_comparison([0.15, 0.25, 0.275], [0.7, 0.8, 0.8]))
    assert results["repeats"] == 3
    assert (results["overall"]["random"]["ranked"], overall["ranked"]) == (False, True)


def test_curves_get_a_pointwise_band():
    curves = [[0.5, 0.6, 0.9], [0.4, 0.7, 0.9], [0.6, 0.65, 0.9]]
    band = stats.describe_curves(curves)
    for point in range(3):
        one = stats.describe([c[point] for c in curves])
        assert band["mean"][point] == pytest.approx(one["mean"])
        assert (band["ci_low"][point], band["ci_high"][point]) == pytest.approx((one["ci_low"], one["ci_high"]))
    assert band["n"] == 3 and stats.describe_curves(curves[:1])["ci_low"] is None


def test_holm_adjusts_a_family_step_down_and_leaves_untested_ones_out():
    # Sorted 0.01, 0.02, 0.04 of m = 3: 3 x 0.01, max(0.03, 2 x 0.02), max(0.04, 1 x 0.04); None is no test.
    adjusted = stats.holm([0.04, None, 0.01, 0.02])
    assert adjusted[1] is None
    assert adjusted[2] == pytest.approx(0.03) and adjusted[3] == pytest.approx(0.04)
    assert adjusted[0] == pytest.approx(0.04)
    # Monotone even where a raw p-value times its factor would fall: 0.02 x 2 = 0.04 < 0.03 x ... is kept >= the one before.
    assert stats.holm([0.02, 0.021]) == pytest.approx([0.04, 0.04])
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]


def test_significance_is_read_from_the_holm_adjusted_p_values_of_each_family():
    # Four methods against random over five repeats; each raw p is under 0.05 but the largest adjusted is not.
    baseline = [0.50, 0.52, 0.49, 0.51, 0.50]
    gains = {"a": [0.30, 0.33, 0.27, 0.31, 0.29], "b": [0.04, 0.05, 0.02, 0.06, 0.03],
             "c": [0.02, 0.05, 0.00, 0.04, 0.03], "d": [0.02, 0.06, 0.00, 0.04, 0.03]}
    replicates = {"t1": {"random": [{"m": v} for v in baseline],
                         **{name: [{"m": b + g} for b, g in zip(baseline, gain)] for name, gain in gains.items()}}}
    setting = stats.summarize_setting(replicates, ["m"])
    comparisons = {name: setting["tasks"]["t1"][name]["vs_random"]["m"] for name in gains}
    raw = [c["p_value"] for c in comparisons.values()]
    assert all(p < 0.05 for p in raw)
    assert [c["p_holm"] for c in comparisons.values()] == pytest.approx(stats.holm(raw))
    assert [c["significant"] for c in comparisons.values()] == [p < 0.05 for p in stats.holm(raw)]
    # Raw p of c about 0.031, of d about 0.040: alone each would be called significant; as a family of four not.
    assert comparisons["b"]["significant"] is True
    assert comparisons["c"]["significant"] is False and comparisons["d"]["significant"] is False
    # The mean over the tasks is a family of its own, adjusted the same way.
    overall = [setting["overall"][name]["vs_random"]["m"] for name in gains]
    assert [c["p_holm"] for c in overall] == pytest.approx(stats.holm([c["p_value"] for c in overall]))


def test_a_metric_undefined_in_some_repeats_is_summarized_and_tested_over_the_others():
    # "auroc" is undefined (None) where a task's repeat has no flipped label: t2's first repeat, and every repeat
    # of t3; "f" is defined everywhere.
    values = {"t1": {"random": [0.5, 0.6, 0.4], "knn_shapley": [0.9, 0.8, 0.85]},
              "t2": {"random": [None, 0.5, 0.55], "knn_shapley": [None, 0.7, 0.9]},
              "t3": {"random": [None] * 3, "knn_shapley": [None] * 3}}
    replicates = {task: {name: [{"f": 0.1, "auroc": v} for v in vs] for name, vs in by.items()}
                  for task, by in values.items()}
    setting = stats.summarize_setting(replicates, ["f", "auroc"])
    t2 = setting["tasks"]["t2"]["knn_shapley"]
    assert t2["over_repeats"]["auroc"] == stats.describe([0.7, 0.9])
    assert t2["vs_random"]["auroc"]["n"] == 2
    assert t2["vs_random"]["auroc"]["mean_difference"] == pytest.approx(np.mean([0.2, 0.35]))
    # Undefined in every repeat: no summary and no test for it, the other metric untouched.
    t3 = setting["tasks"]["t3"]["knn_shapley"]
    assert "auroc" not in t3["over_repeats"] and "auroc" not in t3["vs_random"]
    assert t3["over_repeats"]["f"]["n"] == 3
    # Over the tasks, a repeat's mean is undefined when a task's value is: never a mean over fewer tasks.
    overall = setting["overall"]["knn_shapley"]
    assert "auroc" not in overall["over_repeats"] and overall["over_repeats"]["f"]["n"] == 3
    without_t3 = stats.summarize_setting({task: replicates[task] for task in ("t1", "t2")}, ["f", "auroc"])
    assert without_t3["overall"]["knn_shapley"]["over_repeats"]["auroc"] == pytest.approx(
        stats.describe([0.75, 0.875]))
    assert without_t3["overall"]["knn_shapley"]["vs_random"]["auroc"] == pytest.approx(
        stats.paired_comparison([0.75, 0.875], [0.55, 0.475]))
