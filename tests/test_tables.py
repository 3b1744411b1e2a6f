"""Tests for smlib.tables: summaries, ordering, LaTeX, markdown and CSV."""

import pandas as pd
import pytest

from smlib import tables

METRICS = ["top1_d2h", "within_acc"]


def make_records() -> list[dict]:
    """Runs in scrambled order: two seeds of the proposed condition, one of the others."""
    return [
        {"variant": "verbatim", "condition": "zz_custom", "seed": 0, "top1_d2h": 0.1, "within_acc": 0.5},
        {"variant": "verbatim", "condition": "tfidf", "seed": 0, "top1_d2h": 0.95, "within_acc": float("nan")},
        {"variant": "verbatim", "condition": "v3_contrastive", "seed": 0, "top1_d2h": 0.80, "within_acc": 0.70},
        {"variant": "verbatim", "condition": "adversarial", "seed": 0, "top1_d2h": 0.5, "within_acc": 0.6},
        {"variant": "verbatim", "condition": "v3_contrastive", "seed": 1, "top1_d2h": 0.82, "within_acc": 0.72},
        {"variant": "verbatim", "condition": "v3_mse", "seed": 0, "top1_d2h": 0.01, "within_acc": 0.65},
        {"variant": "no_leak", "condition": "v3_contrastive", "seed": 0, "top1_d2h": 0.4, "within_acc": 0.7},
    ]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(make_records())


def test_summarize_mean_std_formatting(frame):
    summary = tables.summarize(frame, METRICS)
    row = summary[(summary.variant == "verbatim") & (summary.condition == "v3_contrastive")].iloc[0]
    assert row["n_seeds"] == 2
    assert row["top1_d2h_mean"] == pytest.approx(0.81)
    assert row["top1_d2h_std"] == pytest.approx(0.0141421, rel=1e-4)
    assert row["top1_d2h"] == "0.810 ± 0.014"
    assert row["within_acc"] == "0.710 ± 0.014"
    single = summary[summary.condition == "adversarial"].iloc[0]
    assert single["top1_d2h"] == "0.500"
    tfidf = summary[summary.condition == "tfidf"].iloc[0]
    assert tfidf["within_acc"] == "-"
    with pytest.raises(ValueError):
        tables.summarize(frame, ["missing_metric"])


def test_summarize_orders_conditions(frame):
    summary = tables.summarize(frame, METRICS)
    assert list(zip(summary.variant, summary.condition, strict=False)) == [
        ("verbatim", "v3_contrastive"),  # the proposed condition, then the others by name
        ("verbatim", "adversarial"),
        ("verbatim", "v3_mse"),
        ("verbatim", "tfidf"),
        ("verbatim", "zz_custom"),
        ("no_leak", "v3_contrastive"),
    ]


def test_to_latex_booktabs_and_escaping(frame, tmp_path):
    summary = tables.summarize(frame, METRICS)
    path = tmp_path / "results.tex"
    latex = tables.to_latex(summary, path, caption="Top-1 in % per condition_name", label="tab:main")
    assert path.read_text(encoding="utf-8") == latex
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{llrr}", r"\label{tab:main}"):
        assert command in latex
    assert r"v3\_contrastive" in latex
    assert r"top1\_d2h" in latex
    assert r"in \% per condition\_name" in latex
    assert r"0.810 $\pm$ 0.014" in latex
    body = [line for line in latex.splitlines() if not line.startswith(r"\label")]
    assert all("_" not in line.replace(r"\_", "") for line in body)
    assert all("%" not in line.replace(r"\%", "") for line in body)


def test_to_markdown(frame):
    summary = tables.summarize(frame, METRICS)
    lines = tables.to_markdown(summary).strip().splitlines()
    assert lines[0] == "| variant | condition | top1_d2h | within_acc |"
    assert lines[1] == "|---|---|---:|---:|"
    assert lines[2] == "| verbatim | v3_contrastive | 0.810 ± 0.014 | 0.710 ± 0.014 |"
    assert len(lines) == 2 + len(summary)


def test_write_tables_csv_round_trip(frame, tmp_path):
    summary = tables.write_tables(frame, METRICS, tmp_path / "out", "main_results")
    assert (tmp_path / "out" / "main_results.tex").exists()
    loaded = pd.read_csv(tmp_path / "out" / "main_results.csv", encoding="utf-8")
    pd.testing.assert_frame_equal(loaded, summary)
    assert r"\label{tab:main_results}" in (tmp_path / "out" / "main_results.tex").read_text(encoding="utf-8")


def test_summarize_gives_the_t_interval_over_seeds(frame):
    summary = tables.summarize(frame, METRICS)
    row = summary[(summary.variant == "verbatim") & (summary.condition == "v3_contrastive")].iloc[0]
    half = 12.7062047 * 0.0141421 / 2 ** 0.5  # t(0.975, 1) * sd / sqrt(2)
    assert row["top1_d2h_ci_low"] == pytest.approx(0.81 - half, rel=1e-4)
    assert row["top1_d2h_ci_high"] == pytest.approx(0.81 + half, rel=1e-4)
    single = summary[summary.condition == "adversarial"].iloc[0]
    assert pd.isna(single["top1_d2h_ci_low"]) and pd.isna(single["top1_d2h_ci_high"])
    assert "top1_d2h_ci_low" not in tables.to_markdown(summary)  # helpers stay out of the printed table


def test_interval_table_formats_mean_and_interval(frame):
    table = tables.interval_table(tables.summarize(frame, METRICS), METRICS)
    table = table[table.variant == "verbatim"]
    cells = dict(zip(table.condition, table.top1_d2h, strict=False))
    assert cells["v3_contrastive"].startswith("0.810 [") and cells["v3_contrastive"].endswith("]")
    assert cells["adversarial"] == "0.500"
    assert dict(zip(table.condition, table.within_acc, strict=False))["tfidf"] == "-"
