"""The study runner's bookkeeping: resume, refusal to overwrite, results collection, CLI errors."""
from __future__ import annotations

import json

import pytest
from conftest import executed_notebook, write_fake_run

from smlib import study, tables
from smlib.config import REFERENCE_ROWS, conditions
from smlib.record import run_state
from smlib.study import RunFolderError, main, run_dir, study_params
from smlib.tables import collect_results

CONDITIONS = conditions()


def _write_metrics(folder, params, **metrics):
    write_fake_run(folder, params, **metrics)


def _references(ddir, params, rows=None):
    """references.json (for params' dataset) and an executed 01_data notebook beside it."""
    ddir.mkdir(parents=True, exist_ok=True)
    rows = rows if rows is not None else [{"condition": c, "variant": params.data.variant, "seed": params.seed}
                                          for c in REFERENCE_ROWS]
    (ddir / "references.json").write_text(json.dumps(
        {"rows": rows, "data_params": {"seed": params.seed, "data": params.data.model_dump()}}))
    executed_notebook(ddir / "01_data.ipynb")


def test_finished_only_for_matching_params(tmp_path):
    params = study_params("v3_mse", "smoke", "disjoint", 7)
    folder = run_dir(tmp_path, "smoke", "disjoint", 7, "v3_mse")
    assert folder.parts[-4:] == ("smoke", "disjoint", "seed7", "v3_mse")
    assert run_state(folder, params.hash())[0] != "done"
    _write_metrics(folder, params, prefix_d2h_top1=0.5)
    assert run_state(folder, params.hash())[0] == "done"
    other = study_params("v3_mse", "smoke", "disjoint", 7, {"train.lr": 0.5})
    with pytest.raises(RunFolderError, match="records other params"):
        run_state(folder, other.hash())


def test_corrupted_metrics_is_reported_and_left_alone(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="corrupted"):
        run_state(folder, "abc")
    assert (folder / "metrics.json").read_text() == "{not json"


def test_collect_results_reads_runs_and_references(tmp_path):
    profile_dir = tmp_path / "smoke"
    for condition, top1 in (("v3_contrastive", 0.9), ("v3_mse", 0.1)):
        params = study_params(condition, "smoke", "verbatim", 42)
        _write_metrics(run_dir(tmp_path, "smoke", "verbatim", 42, condition), params, prefix_d2h_top1=top1)
    ref = {"rows": [{"variant": "verbatim", "condition": "chance", "seed": 42, "prefix_d2h_top1": 0.05}]}
    (profile_dir / "verbatim" / "seed42" / "references.json").write_text(json.dumps(ref))
    frame = collect_results(profile_dir)
    assert sorted(frame["condition"]) == ["chance", "v3_contrastive", "v3_mse"]
    assert frame.set_index("condition").loc["v3_mse", "prefix_d2h_top1"] == 0.1
    summary = tables.write_results_table(profile_dir)
    assert list(summary["condition"]) == ["v3_contrastive", "v3_mse", "chance"]
    assert (profile_dir / "results.md").read_text().count("\n") >= 4


def test_results_carry_both_directions_and_intervals_over_seeds(tmp_path):
    profile_dir = tmp_path / "smoke"
    for seed, (d2h, h2d) in zip((42, 43, 44), ((0.8, 0.6), (0.9, 0.7), (0.7, 0.5)), strict=False):
        params = study_params("v3_contrastive", "smoke", "disjoint", seed)
        _write_metrics(run_dir(tmp_path, "smoke", "disjoint", seed, "v3_contrastive"), params,
                       prefix_d2h_top1=d2h, prefix_h2d_top1=h2d, triplet_acc_dating=0.9)
    frame = collect_results(profile_dir)
    assert sorted(frame["prefix_top1"]) == pytest.approx([0.6, 0.7, 0.8])
    tables.write_results_table(profile_dir)
    text = (profile_dir / "results.md").read_text()
    assert "seeds 42, 43, 44" in text and "0.800 ± 0.100" in text
    assert "0.700 [0.452, 0.948]" in text  # mean 0.7, sd 0.1, t(0.975, 2) * 0.1 / sqrt(3) = 0.248


def test_collect_results_on_empty_folder_names_the_fix(tmp_path):
    with pytest.raises(RunFolderError, match="python -m smlib.study --profile empty"):
        collect_results(tmp_path / "empty")


def test_update_readme_replaces_only_the_block(tmp_path):
    params = study_params("v3_contrastive", "smoke", "verbatim", 42)
    _write_metrics(run_dir(tmp_path, "smoke", "verbatim", 42, "v3_contrastive"), params, prefix_d2h_top1=0.75,
                   prefix_h2d_top1=0.75)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{tables.ANSWER_START}\nold answer\n{tables.ANSWER_END}\noutro\n")
    page = tmp_path / "smoke" / "README.md"
    page.write_text(f"# reading\n{tables.README_START}\nold table\n{tables.README_END}\nmore reading\n")
    tables.update_readme(tmp_path / "smoke", readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old answer" not in text
    assert "| `verbatim` | 0.750 |" in text  # one seed: no interval
    text = page.read_text()
    assert text.startswith("# reading\n") and text.endswith("more reading\n") and "old table" not in text
    assert "0.750" in text and (tmp_path / "smoke" / "results.md").read_text().strip() in text


@pytest.mark.parametrize("argv, message", [
    (["--profile", "smoke", "--conditions", "v9_magic"], "unknown condition 'v9_magic'"),
    (["--profile", "nosuch"], "unknown profile 'nosuch'"),
    (["--profile", "smoke", "--variants", "mixed"], "unknown variant 'mixed'"),
    (["--profile", "smoke", "--seeds", "one"], "--seeds 'one'"),
    (["--profile", "smoke", "--set", "train.lr=fast"], "train.lr"),
])
def test_cli_rejects_bad_input_before_running_anything(tmp_path, capsys, argv, message):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_references_missing_names_the_rows_an_old_record_lacks(tmp_path):
    assert study.references_missing(tmp_path) == list(REFERENCE_ROWS)
    old = {"rows": [{"condition": c} for c in ("chance", "tfidf", "zero_shot", "ceiling")]}
    (tmp_path / "references.json").write_text(json.dumps(old))
    executed_notebook(tmp_path / "01_data.ipynb")
    assert study.references_missing(tmp_path) == ["tfidf_trained_word", "tfidf_trained_char", "frozen_probe",
                                                  "procrustes", "cca"]
    (tmp_path / "references.json").write_text(json.dumps({"rows": [{"condition": c} for c in REFERENCE_ROWS]}))
    assert study.references_missing(tmp_path) == []
    executed_notebook(tmp_path / "01_data.ipynb", pending=1)  # killed during 01_data: its record is incomplete
    assert study.references_missing(tmp_path) == ["01_data.ipynb"]
    (tmp_path / "references.json").write_text("{broken")
    with pytest.raises(RunFolderError, match="corrupted"):
        study.references_missing(tmp_path)


def test_runner_reruns_01_data_only_where_references_are_stale_or_asked(tmp_path, monkeypatch):
    calls = []

    def runner(nb, path, parameters, *a, **k):
        calls.append((nb, path))

    monkeypatch.setattr(study.run, "write_results_table", lambda profile_dir: (profile_dir / "results.md").write_text(""))
    for variant, rows in (("verbatim", None), ("disjoint", [{"condition": "chance"}])):
        ddir = study.dataset_dir(tmp_path, "smoke", variant, 42)
        _references(ddir, study_params("v3_contrastive", "smoke", variant, 42), rows)
        for condition in CONDITIONS:  # every run finished: only 01_data and 04 could run
            _write_metrics(run_dir(tmp_path, "smoke", variant, 42, condition), study_params(condition, "smoke", variant, 42))
    kw = dict(variants=("verbatim", "disjoint"), out=tmp_path, data_root=tmp_path / "data", checkpoint_root=tmp_path / "ckpt",
              run_notebook=runner)
    study.run_study("smoke", **kw)
    assert [(nb, p.parent.parent.name) for nb, p in calls if nb == "01_data.ipynb"] == [("01_data.ipynb", "disjoint")]
    calls.clear()
    study.run_study("smoke", **kw, refresh_references=True)
    assert sorted(p.parent.parent.name for nb, p in calls if nb == "01_data.ipynb") == ["disjoint", "verbatim"]
    assert not [nb for nb, _ in calls if nb in ("02_train.ipynb", "03_evaluate.ipynb")]


def test_parse_sweep_reads_values_and_refuses_what_cannot_be_swept():
    assert study.parse_sweep("model.prefix_dim=16, 32,128") == ("model.prefix_dim", [16, 32, 128])
    assert study.parse_sweep("loss.cross_domain=infonce,mse") == ("loss.cross_domain", ["infonce", "mse"])
    for bad, needle in (("model.prefix_dim", "expected KEY=V1"), ("data.n_people=10,20", "only model"),
                        ("prefix_dim=16", "only model"), ("model.prefix_dim=16,,32", "empty value"),
                        ("model.prefix_dim=16,16", "repeated"), ("model.prefix_dim=[1", "not valid YAML")):
        with pytest.raises(study.ParamsError, match=needle):
            study.parse_sweep(bad)


def test_sweep_points_name_their_folders_and_keep_the_prefix_a_matryoshka_dim():
    points = dict(study.sweep_points("v3_contrastive", "smoke", "disjoint", 42, {}, ("model.prefix_dim", [16, 64, 100])))
    assert list(points) == ["v3_contrastive@prefix_dim=16", "v3_contrastive", "v3_contrastive@prefix_dim=100"]
    assert points["v3_contrastive"] == {}  # the profile's own value is the plain run, not a copy of it
    p16 = study_params("v3_contrastive", "smoke", "disjoint", 42, points["v3_contrastive@prefix_dim=16"])
    assert p16.model.prefix_dim == 16 and p16.model.matryoshka_dims == [16, 32, 64, 128, 256, 384]
    p100 = study_params("v3_contrastive", "smoke", "disjoint", 42, points["v3_contrastive@prefix_dim=100"])
    assert 100 in p100.model.matryoshka_dims
    with pytest.raises(study.ParamsError, match="train.lr"):
        study.sweep_points("v3_contrastive", "smoke", "disjoint", 42, {}, ("train.lr", ["fast"]))


def test_runner_runs_each_sweep_point_in_its_own_folder_and_tables_keep_them_apart(tmp_path, monkeypatch):
    calls = []

    def fake_execute(nb, path, parameters, *a, **k):
        calls.append((nb, path.parent.name))
        if nb == "03_evaluate.ipynb":  # what 02 and 03 record: notebooks, embeddings, metrics.json for the params
            params = study_params(parameters["condition"], "smoke", parameters["variant"], parameters["seed"],
                                  parameters["overrides"])
            write_fake_run(path.parent, params, complete=False, prefix_d2h_top1=params.model.prefix_dim / 100,
                           prefix_h2d_top1=0.5, triplet_acc_dating=0.7, triplet_acc_hiring=0.8)

    _references(study.dataset_dir(tmp_path, "smoke", "disjoint", 42), study_params("v3_contrastive", "smoke", "disjoint", 42))
    kw = dict(conditions=("v3_contrastive",), variants=("disjoint",), out=tmp_path, data_root=tmp_path / "data",
              checkpoint_root=tmp_path / "ckpt", sweep=("model.prefix_dim", [16, 32, 64]), run_notebook=fake_execute)
    _, failures = study.run_study("smoke", **kw)
    assert not failures
    trained = [name for nb, name in calls if nb == "02_train.ipynb"]
    assert trained == ["v3_contrastive@prefix_dim=16", "v3_contrastive@prefix_dim=32", "v3_contrastive"]
    calls.clear()
    study.run_study("smoke", **kw)  # everything finished: resumes by skipping all three
    assert not [nb for nb, _ in calls if nb == "02_train.ipynb"]
    frame = collect_results(tmp_path / "smoke")
    assert set(frame["condition"]) - set(REFERENCE_ROWS) == {"v3_contrastive", "v3_contrastive@prefix_dim=16",
                                                                   "v3_contrastive@prefix_dim=32"}
    text = (tmp_path / "smoke" / "results.md").read_text()
    assert "Sweep runs" in text and (tmp_path / "smoke" / "results_sweep.csv").exists()
    from smlib import plots

    fig = plots.sweep_curve(frame, "prefix_dim", base_value=64)
    curve = next(line for line in fig.axes[0].lines if line.get_label().startswith("identity"))
    assert list(curve.get_xdata()) == [16, 32, 64]
    assert list(curve.get_ydata()) == pytest.approx([(0.16 + 0.5) / 2, (0.32 + 0.5) / 2, (0.64 + 0.5) / 2])


def test_cli_refuses_a_bad_sweep_before_running_anything(tmp_path, capsys):
    assert main(["--profile", "smoke", "--sweep", "data.n_people=10", "--out", str(tmp_path)]) == 2
    assert "only model" in capsys.readouterr().err and not any(tmp_path.iterdir())


def test_paired_markdown_says_when_an_interval_has_no_spread():
    import pandas as pd

    rows = [{"variant": "verbatim", "method": "v3_mse", "vs": "v3_contrastive", "vs_role": "proposed", "diff": 0.0,
             "low": 0.0, "high": 0.0, "degenerate": True, "n_seeds": 2},
            {"variant": "verbatim", "method": "adversarial", "vs": "v3_contrastive", "vs_role": "proposed", "diff": -0.1,
             "low": -0.2, "high": -0.05, "degenerate": False, "n_seeds": 2}]
    text = tables.paired_markdown(pd.DataFrame(rows))
    assert "+0.000 (no spread: every resample equal)" in text and "-0.100 [-0.200, -0.050]" in text
    assert "nan" not in text.lower()


def test_notebook_parameters_name_repository_paths_relative_to_the_notebooks(tmp_path):
    assert study.nb_path(study.ROOT / "runs" / "quick") == "../runs/quick"
    assert study.nb_path(study.ROOT / "checkpoints" / "x") == "../checkpoints/x"
    assert study.nb_path(tmp_path / "out") == str((tmp_path / "out").resolve())  # outside the repository: absolute
