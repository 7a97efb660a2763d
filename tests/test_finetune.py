"""Fine-tuning a trained PFN on one dataset: the validation loss goes down where the model is wrong, early
stopping keeps the best (here: the parent's) weights, ``trainable`` freezes what it says, a seed fixes the
weights, too-small or one-class data is refused, and ``pfnforge finetune`` writes a model directory that loads
and names its parent (and registers it)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from pfnforge import PFNClassifier, PFNRegressor
from pfnforge.cli import main
from pfnforge.errors import ConfigError, InputError
from pfnforge.inference.artifact import METADATA_FILE, build_random_pfn, save_model_dir
from pfnforge.inference.finetune import FinetuneConfig, finetune
from pfnforge.inference.loading import load_model
from pfnforge.model.pfn import ModelConfig

FAST = {"batch_datasets": 4, "eval_every": 2, "num_views": 2}
"""Small steps for a 2-core machine."""


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine two threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    """An untrained (so: wrong) PFN with both heads and two blocks."""
    config = ModelConfig(embed_dim=16, num_layers=2, num_heads=2, max_features=4, max_classes=3, num_buckets=20)
    return build_random_pfn(config, max_rows=200, seed=1)


def _table(num_rows: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(num_rows, 3))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def _state(trained) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trained.model.state_dict().items()}


def test_finetuning_lowers_the_validation_loss_of_a_wrong_model_and_leaves_the_parent(tiny):
    X, y = _table()
    before = _state(tiny)
    result = finetune(tiny, X, y, FinetuneConfig(max_steps=12, learning_rate=3e-3, patience=6, **FAST),
                      task="classification")
    assert result.best_validation_loss < result.initial_validation_loss - 0.05, result.history
    assert result.best_step > 0 and not result.trained.model.training
    assert all(torch.equal(before[k], v) for k, v in tiny.model.state_dict().items())  # the parent is a copy
    assert (result.num_finetune_rows, result.num_validation_rows) == (64, 16)


def test_early_stopping_keeps_the_parents_weights_when_the_loss_only_rises(tiny):
    X, y = _table()
    config = FinetuneConfig(max_steps=50, learning_rate=1.0, patience=2, eval_every=1, batch_datasets=2)
    result = finetune(tiny, X, y, config, task="classification")
    assert result.stopped_early and len(result.history) == 2 and result.history[-1].step == 2
    assert all(r.validation_loss > result.initial_validation_loss for r in result.history)
    assert result.best_step == 0
    assert all(torch.equal(tiny.model.state_dict()[k], v) for k, v in result.trained.model.state_dict().items())


@pytest.mark.parametrize(("trainable", "changing"), [
    ("heads", ("classification_head.",)),
    ("last:1", ("classification_head.", "layers.1.", "norm.")),
])
def test_trainable_leaves_every_other_parameter_bitwise_unchanged(tiny, trainable, changing):
    X, y = _table()
    result = finetune(tiny, X, y, FinetuneConfig(max_steps=4, learning_rate=3e-3, patience=4, trainable=trainable,
                                                 **FAST), task="classification")
    assert result.best_step > 0
    parent, tuned = tiny.model.state_dict(), result.trained.model.state_dict()
    frozen = [k for k in parent if not k.startswith(changing)]
    assert "encode_x.weight" in frozen and all(torch.equal(parent[k], tuned[k]) for k in frozen)
    assert not torch.equal(parent["classification_head.weight"], tuned["classification_head.weight"])
    assert all(p.requires_grad for p in result.trained.model.parameters())


def test_the_same_seed_gives_identical_weights_and_another_seed_does_not(tiny):
    X, y = _table()

    def tuned(seed: int) -> dict[str, torch.Tensor]:
        config = FinetuneConfig(max_steps=2, learning_rate=3e-3, eval_every=1, batch_datasets=2, seed=seed)
        return finetune(tiny, X, y, config, task="classification").trained.model.state_dict()

    first, again, other = tuned(3), tuned(3), tuned(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.parametrize(("num_rows", "labels", "error", "match"), [
    (30, None, InputError, "30 rows with validation_fraction=0.2 leave 24 rows to fine-tune on and 6 to validate"),
    (60, "one", InputError, "y has one class"),
    (60, "singleton", InputError, r"class\(es\) 9 have one row each"),
    (60, "continuous", InputError, "not class labels"),
])
def test_data_that_cannot_hold_out_a_validation_split_is_refused(tiny, num_rows, labels, error, match):
    X, y = _table(num_rows)
    if labels == "one":
        y = np.zeros_like(y)
    elif labels == "singleton":
        y[0] = 9
    elif labels == "continuous":
        y = X[:, 0]
    with pytest.raises(error, match=match):
        finetune(tiny, X, y, FinetuneConfig(max_steps=1), task="classification")


def test_bad_options_are_refused_with_their_names(tiny):
    X, y = _table()
    with pytest.raises(ConfigError, match=r"unknown fine-tuning option.*max_step"):
        PFNClassifier(tiny).fine_tune(X, y, max_step=3)
    with pytest.raises(ConfigError, match=r"trainable='last:5'.*2 blocks"):
        finetune(tiny, X, y, FinetuneConfig(trainable="last:5"), task="classification")
    with pytest.raises(ConfigError, match="trainable='top'"):
        FinetuneConfig(trainable="top")
    with pytest.raises(ConfigError, match="query_fraction"):
        FinetuneConfig(query_fraction=(0.5, 0.2))


def test_regressor_fine_tune_replaces_its_model_and_predicts(tiny):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 2))
    y = 3.0 * X[:, 0] + np.sin(3 * X[:, 1]) + 10
    regressor = PFNRegressor(tiny, n_estimators=2).fine_tune(X, y, max_steps=8, learning_rate=3e-3, **FAST)
    result = regressor.finetune_result_
    assert result.best_validation_loss < result.initial_validation_loss - 0.05, result.history
    assert regressor.model is result.trained and regressor.pfn_ is result.trained
    assert regressor.finetune_history_ == result.history and regressor.predict(X[:5]).shape == (5,)


def test_cli_writes_a_model_directory_that_loads_and_names_its_parent(tiny, tmp_path, capsys):
    X, y = _table()
    data = tmp_path / "data.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": np.array(["no", "yes"])[y]}).to_csv(
        data, index=False)
    parent = save_model_dir(tiny, tmp_path / "parent", training={"recipe": "tiny-recipe"})
    out = tmp_path / "tuned"
    assert main(["finetune", str(parent), "--train", str(data), "--target", "label", "--out", str(out),
                 "--max-steps", "4", "--eval-every", "2", "--batch-datasets", "2", "--learning-rate", "3e-3",
                 "--trainable", "last:1", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "validation loss" in printed and str(out) in printed
    training = json.loads((out / METADATA_FILE).read_text())["training"]
    assert training["parent"]["source"] == str(parent) and training["parent"]["recipe"] == "tiny-recipe"
    assert training["dataset"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert training["dataset"]["file"] == "data.csv" and training["dataset"]["rows"] == 80
    assert training["finetune"]["trainable"] == "last:1" and training["finetune"]["seed"] == 5
    assert [r["step"] for r in training["history"]] == [2, 4]
    assert training["validation_loss"]["after"] <= training["validation_loss"]["before"]
    tuned = load_model(out)
    assert tuned.task == "mixed" and PFNClassifier(out).fit(X, y).predict(X[:3]).shape == (3,)


def test_cli_refuses_an_unknown_target_one_class_and_too_few_rows(tiny, tmp_path, capsys):
    X, y = _table()
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": y})
    parent = str(save_model_dir(tiny, tmp_path / "parent"))
    for name, table, target, message in [
        ("data.csv", frame, "y", "--target 'y' is not a column"),
        ("one.csv", frame.assign(label=1), "label", "y has one class"),
        ("small.csv", frame.head(20), "label", "20 rows with validation_fraction=0.2"),
    ]:
        table.to_csv(tmp_path / name, index=False)
        assert main(["finetune", parent, "--train", str(tmp_path / name), "--target", target, "--task",
                     "classification", "--out", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_fine_tunes_the_bundled_model_and_registers_it(tmp_path, capsys, monkeypatch):
    X, y = _table(60)
    data = tmp_path / "data.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": y}).to_csv(data, index=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["finetune", "--train", str(data), "--target", "label", "--out", str(tmp_path / "tuned"),
                 "--max-steps", "1", "--batch-datasets", "1", "--num-views", "1", "--register", "tuned-pfn",
                 "--tracking-uri", uri]) == 0
    assert "registered tuned-pfn version 1" in capsys.readouterr().out
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("PFNFORGE_CACHE_DIR", str(tmp_path / "cache"))
    training = load_model("models:/tuned-pfn/1").metadata["training"]
    assert training["parent"]["source"] == "bundled classification model"
    assert training["parent"]["recipe"] == "tabular_scm_cpu" and training["kind"] == "finetune"
