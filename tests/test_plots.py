"""smlib.plots on a smoke dataset, random embeddings and a fake results frame (headless, Agg)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from smlib import analysis, evaluation, plots  # noqa: E402
from smlib.evaluation import EMBEDDING_KEYS  # noqa: E402
from smlib.metrics import dim_sweep  # noqa: E402

WIDTH, PREFIX = 48, 8
CONDS = ("v3_contrastive", "v3_no_prefix", "adversarial")


@pytest.fixture(scope="module")
def dataset(smoke_dataset):
    return smoke_dataset  # conftest's session-wide smoke dataset


def fake_embeddings(dataset, seed: int, shared: float) -> dict[str, np.ndarray]:
    """embed_validation's layout: random rows where each person's two texts share a `shared` component."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(dataset.split["val"], dtype=np.int64)
    person = rng.normal(size=(len(ids), WIDTH))
    out = {"person_ids": ids}
    for dom in ("dating", "hiring"):
        full = (shared * person + rng.normal(size=person.shape)).astype(np.float32)
        out[dom], out[f"{dom}_prefix"] = full, full[:, :PREFIX].copy()
        out[f"triplets_{dom}"] = np.asarray([t[:3] for t in dataset.triplets["val"][dom]], dtype=np.int64)
    return out


@pytest.fixture(scope="module")
def embs(dataset):
    return {c: fake_embeddings(dataset, i, shared) for i, (c, shared) in enumerate(zip(CONDS, (2.0, 0.3, 1.0), strict=False))}


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    rows = []
    for variant, seeds in (("verbatim", (42,)), ("disjoint", (42, 43))):
        for seed in seeds:
            for cond in ("adversarial", "v3_contrastive", "v3_mse"):  # deliberately out of canonical order
                top1 = rng.uniform(0.2, 0.8)
                rows.append({"variant": variant, "condition": cond, "seed": seed, "prefix_d2h_top1": top1,
                             "prefix_d2h_top1_ci_low": top1 - 0.05, "prefix_d2h_top1_ci_high": top1 + 0.05,
                             **{f"cka@{d}": rng.uniform() for d in (32, 64, 128, 256, 384)}})
            rows += [{"variant": variant, "condition": "chance", "seed": seed, "prefix_d2h_top1": 0.01},
                     {"variant": variant, "condition": "tfidf", "seed": seed, "prefix_d2h_top1": 0.9,
                      "prefix_d2h_top1_ci_low": 0.85, "prefix_d2h_top1_ci_high": 0.95},
                     {"variant": variant, "condition": "ceiling", "seed": seed, "prefix_d2h_top1": 0.99}]
    return pd.DataFrame(rows)


def axes_with_data(fig: Figure) -> list:
    """Axes that hold something drawn and carry a title."""
    drawn = [ax for ax in fig.axes if ax.lines or ax.patches or ax.collections or ax.images]
    assert all(ax.get_title() for ax in drawn)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in drawn)
    return drawn


@pytest.fixture
def check():
    """Assert a figure has n titled, labelled panels with data, then close it (rendering is tested once, below)."""
    def _check(fig, n):
        assert isinstance(fig, Figure)
        assert len(axes_with_data(fig)) == n
        plt.close(fig)
    return _check


def test_save_writes_png(embs, tmp_path):
    fig = plots.slider_plot(evaluation.slider_frame(embs, 4))
    path = plots.save(fig, tmp_path / "a" / "b" / "fig.png")
    assert path == tmp_path / "a" / "b" / "fig.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    plt.close(fig)


def test_attribute_distributions(dataset, check):
    check(plots.attribute_distributions(dataset.people), 8)


@pytest.mark.parametrize("variant", ["verbatim", "disjoint"])
def test_template_usage(dataset, check, variant):
    fig = plots.template_usage(dataset.people, variant, 42)
    heatmap = fig.axes[2]
    counts = np.asarray(heatmap.collections[0].get_array()).reshape(8, 8)
    assert counts.sum() == len(dataset.people)
    if variant == "verbatim":  # each dating template pairs with exactly one hiring template
        assert ((counts > 0).sum(axis=1) <= 1).all()
    check(fig, 3)


class WordTokenizer:
    """A stand-in for a Hugging Face tokenizer: whitespace words plus [CLS]/[SEP]."""

    def __call__(self, texts, truncation=False):
        return {"input_ids": [[0] + [1] * len(t.split()) + [2] for t in texts]}


def test_token_lengths(dataset, check):
    texts = {dom: [dataset.text(dom, i) for i in dataset.split["val"]] for dom in ("dating", "hiring")}
    fig = plots.token_lengths(texts, WordTokenizer(), max_length=20)
    assert all("truncated" in ax.get_title() for ax in fig.axes)
    check(fig, 2)


@pytest.mark.parametrize("extra", [(), ("cross", "adversarial")])
def test_training_curves(check, extra):
    steps = np.arange(1, 41)
    history = pd.DataFrame({"step": steps, "epoch": steps // 20, "domain": ["dating", "hiring"] * 20,
                            "lr": np.linspace(0, 1e-4, 40), "within": np.exp(-steps / 10), "total": 2 * np.exp(-steps / 10),
                            "grad_norm": 1.0, "seconds": 0.5, "texts_per_s": 40 + np.sin(steps)})
    for col in extra:
        history[col] = 0.5
    fig = plots.training_curves(history)
    assert len(fig.axes[0].get_legend().get_texts()) == 2 + len(extra)
    check(fig, 3)


def test_rank_histograms(embs, check):
    fig = plots.rank_histograms(embs["v3_contrastive"])
    assert all("top-1" in ax.get_title() for ax in fig.axes)
    check(fig, 4)


def test_hardest_misses(embs, dataset):
    emb = embs["v3_no_prefix"]
    misses = evaluation.hardest_misses(emb, dataset, k=4)
    assert list(misses.columns) == ["person_id", "rank", "true_sim", "best_wrong_id", "best_wrong_sim", "dating_text",
                                    "true_hiring_text", "best_wrong_hiring_text"]
    assert len(misses) == 4
    assert misses["rank"].is_monotonic_decreasing and misses["rank"].iloc[0] > 1
    assert (misses["best_wrong_id"] != misses["person_id"]).all()
    assert (misses["best_wrong_sim"] >= misses["true_sim"]).all()  # rank > 1: something wrong scored higher
    for row in misses.itertuples():
        assert row.dating_text == dataset.text("dating", row.person_id)
        assert row.true_hiring_text == dataset.text("hiring", row.person_id)
        assert row.best_wrong_hiring_text == dataset.text("hiring", row.best_wrong_id)
    # the worst rank over every query, computed directly
    d = torch.nn.functional.normalize(torch.from_numpy(emb["dating_prefix"]), dim=1)
    h = torch.nn.functional.normalize(torch.from_numpy(emb["hiring_prefix"]), dim=1)
    sims = d @ h.T
    ranks = (sims >= sims.diagonal()[:, None]).sum(dim=1)
    assert misses["rank"].iloc[0] == ranks.max().item()


def test_top1_with_ci(results, check):
    fig = plots.top1_with_ci(results)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["v3_contrastive", "adversarial", "v3_mse"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("chance") for t in legend) and any(t.startswith("tfidf") for t in legend)
    assert "t-interval over 2 seeds" in fig.axes[1].get_title() and "bootstrap" in fig.axes[0].get_title()
    check(fig, 2)


def test_top1_with_ci_error_bars_are_the_t_interval_over_seeds():
    rows = [{"variant": "disjoint", "condition": "v3_contrastive", "seed": s, "prefix_top1": v}
            for s, v in ((42, 0.70), (43, 0.80), (44, 0.90))]
    fig = plots.top1_with_ci(pd.DataFrame(rows))
    ax = fig.axes[0]
    (caps_low, caps_high) = [line.get_ydata()[0] for line in ax.lines if line.get_marker() == "_"][:2]
    half = 4.302653 * 0.1 / np.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert sorted((caps_low, caps_high)) == pytest.approx([0.8 - half, 0.8 + half], abs=1e-4)
    assert ax.patches[0].get_height() == pytest.approx(0.8)


def test_sweep_curve_averages_only_the_seeds_the_sweep_ran():
    """The condition's own row of a seed the sweep did not run stays out, so every point is the same seeds' mean."""
    rows = [{"variant": "disjoint", "condition": "v3_contrastive", "seed": s, "prefix_d2h_top1": v, "prefix_h2d_top1": v,
             "triplet_acc_dating": 0.8, "triplet_acc_hiring": 0.9} for s, v in ((42, 0.8), (43, 0.4))]
    rows += [{"variant": "disjoint", "condition": "v3_contrastive@prefix_dim=16", "seed": 42, "prefix_d2h_top1": 0.6,
              "prefix_h2d_top1": 0.6, "triplet_acc_dating": 0.7, "triplet_acc_hiring": 0.9}]
    rows += [{"variant": "heldout", "condition": "v3_contrastive", "seed": 42, "prefix_d2h_top1": 0.1,
              "prefix_h2d_top1": 0.1, "triplet_acc_dating": 0.8, "triplet_acc_hiring": 0.8}]  # no sweep: no panel
    frame = pd.DataFrame(rows)
    frame["prefix_top1"] = frame["prefix_d2h_top1"]
    fig = plots.sweep_curve(frame, "prefix_dim", base_value=64)
    assert len(fig.axes) == 1 and fig.axes[0].get_title().startswith("disjoint") and "(seed 42)" in fig.axes[0].get_title()
    curve = next(line for line in fig.axes[0].lines if line.get_label().startswith("identity"))
    assert list(curve.get_xdata()) == [16, 64] and list(curve.get_ydata()) == pytest.approx([0.6, 0.8])


def test_cka_vs_dim(results, check):
    fig = plots.cka_vs_dim(results, prefix_dim=64)
    assert fig.axes[0].get_xscale() == "log"
    check(fig, 2)


def test_cka_vs_dim_draws_a_band_only_with_several_seeds(results):
    fig = plots.cka_vs_dim(results, prefix_dim=64)
    bands = [len([c for c in ax.collections if c.__class__.__name__ in ("PolyCollection", "FillBetweenPolyCollection")])
             for ax in fig.axes]
    assert bands[0] == 0 and bands[1] == 3  # verbatim has one seed, disjoint two (three conditions)


def _completed(folder) -> None:
    """A run.json for a hand-made run folder, listing what it holds (smlib reads completed runs only)."""
    import json

    from smlib.record import COMPLETION, sha256

    files = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / COMPLETION).write_text(json.dumps({"params_hash": "hand-made", "files": files}))


def test_learning_curves_from_histories(tmp_path, check):
    for seed, scale in ((42, 1.0), (43, 0.8)):
        for cond in ("v3_mse", "v3_contrastive"):
            folder = tmp_path / "quick" / "disjoint" / f"seed{seed}" / cond
            folder.mkdir(parents=True)
            h = pd.DataFrame({"step": range(10), "total": np.linspace(3, 1, 10)})
            h["val_top1"] = [scale * (s + 1) / 10 if s % 5 == 4 else np.nan for s in range(10)]
            h.to_csv(folder / "history.csv", index=False)
            _completed(folder)
    histories = analysis.load_histories(tmp_path / "quick")
    assert set(histories["seed"]) == {42, 43} and set(histories["condition"]) == {"v3_mse", "v3_contrastive"}
    refs = pd.DataFrame([{"variant": "disjoint", "condition": "zero_shot", "seed": 42, "prefix_top1": 0.05}])
    fig = plots.learning_curves(histories, references=refs)
    ax = fig.axes[0]
    curve = next(line for line in ax.lines if line.get_label() == "v3_contrastive")
    assert list(curve.get_xdata()) == [5, 10]
    assert list(curve.get_ydata()) == pytest.approx([0.45, 0.9])  # mean of the two seeds at each check
    assert any(line.get_label().startswith("zero_shot") for line in ax.lines)
    assert "2 seeds" in ax.get_title()
    check(fig, 1)
    with pytest.raises(FileNotFoundError, match="history.csv"):
        analysis.load_histories(tmp_path / "nothing")


def test_prefix_projection(embs, check):
    check(plots.prefix_projection(embs, max_points=10), len(embs))


def test_load_run_embeddings(embs, tmp_path):
    seed_dir = tmp_path / "smoke" / "verbatim" / "seed42"
    for cond, emb in embs.items():
        (seed_dir / cond).mkdir(parents=True)
        np.savez(seed_dir / cond / "embeddings.npz", **{k: emb[k] for k in EMBEDDING_KEYS})
        _completed(seed_dir / cond)
    (seed_dir / "single_dating").mkdir()  # a run without embeddings is skipped
    loaded = analysis.load_run_embeddings(tmp_path / "smoke", "verbatim", 42)
    assert list(loaded) == ["v3_contrastive", "adversarial", "v3_no_prefix"]
    for cond, emb in loaded.items():
        assert set(emb) == set(EMBEDDING_KEYS)
        np.testing.assert_array_equal(emb["dating"], embs[cond]["dating"])
    with pytest.raises(FileNotFoundError):
        analysis.load_run_embeddings(tmp_path / "smoke", "disjoint", 42)


@pytest.mark.parametrize("d", [1, 2, PREFIX, 20, WIDTH - 1, WIDTH])
def test_slider_frame_matches_dim_sweep(embs, d):
    frame = evaluation.slider_frame(embs, d)
    assert list(frame["condition"]) == list(embs) and (frame["dim"] == d).all()
    for row in frame.itertuples():
        direct = dim_sweep(torch.from_numpy(embs[row.condition]["dating"]),
                           torch.from_numpy(embs[row.condition]["hiring"]), d).iloc[0]
        assert row.cka == pytest.approx(direct["cka"])
        assert row.top1_d2h == pytest.approx(direct["top1_d2h"])
        assert row.top1_h2d == pytest.approx(direct["top1_h2d"])


@pytest.mark.parametrize("d", [0, -1, WIDTH + 1])
def test_slider_frame_rejects_out_of_range(embs, d):
    with pytest.raises(ValueError):
        evaluation.slider_frame(embs, d)


def test_slider_plot(embs, check):
    fig = plots.slider_plot(evaluation.slider_frame(embs, 16))
    assert "16" in fig.axes[0].get_title()
    check(fig, 2)


def test_dimension_explorer_redraws_on_the_slider_and_the_variant(embs, dataset):
    other = {c: fake_embeddings(dataset, 10 + i, 0.1) for i, c in enumerate(CONDS)}
    box, update = plots.dimension_explorer({"disjoint": embs, "verbatim": other}, d=16)
    choice, slider, title, image, table = box.children[0].children[0], *box.children[1:]
    assert choice.options == ("disjoint", "verbatim") and slider.value == 16 and slider.layout.width == "95%"
    first_png, first_table = image.value, table.value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n" and "disjoint" in title.value and "d = 16" in title.value
    slider.value = 3  # what dragging does: the observer redraws figure and table
    assert image.value != first_png and table.value != first_table and "d = 3" in title.value
    expected = evaluation.slider_frame(other, 3).round(3).to_html(index=False)
    choice.value = "verbatim"
    assert table.value == expected and "verbatim" in title.value
    assert update("disjoint", 5)["dim"].unique().tolist() == [5]


def test_figures_fit_a_notebook_and_tables_show_text_left_and_counts_whole():
    assert plots._window(4) == 3 and plots._window(2) == 2 and plots._window(400) == 20
    frame = pd.DataFrame({"text": ["a long text", "b"], "n": [150, 3], "x": [0.12345, float("nan")]})
    html = plots.show_table(frame, decimals=2).to_html()
    assert ">150<" in html and "150.0" not in html and ">0.12<" in html and ">-<" in html
    assert "text-align: left" in html
