"""The ``tables`` prior: datasets cut from real tables. No row is both a training and a test row of a dataset;
classes and category codes are permuted per dataset; tables too small for a shape are left out (and no table
fitting is a named error); it mixes with a synthetic prior at the configured shares and runs through the
worker pool of ``pfnforge generate``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pfnforge import registry
from pfnforge.config import compose_prior_config
from pfnforge.errors import ConfigError
from pfnforge.prior import BatchShape
from pfnforge.stream.shards import ShardSource


def _write_corpus(directory, tables: dict[str, pd.DataFrame], task: str = "classification"):
    entries = []
    for name, frame in tables.items():
        path = directory / f"{name}.csv"
        frame.to_csv(path, index=False)
        entries.append({"name": name, "task": task, "target": "target", "file": path.name, "format": "csv",
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    (directory / "manifest.json").write_text(json.dumps({"name": "mine", "datasets": entries}))
    return directory


def _row_coded(num_rows: int, num_columns: int, seed: int) -> pd.DataFrame:
    """Every feature value names its row: column j of row i holds 100 * i + j."""
    rows = np.arange(num_rows)[:, None]
    frame = pd.DataFrame(100.0 * rows + np.arange(num_columns)[None, :], columns=[f"c{j}" for j in range(num_columns)])
    frame["target"] = np.random.default_rng(seed).choice(["yes", "no"], num_rows)
    return frame


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("corpus")
    return _write_corpus(directory, {"big": _row_coded(120, 6, 0), "small": _row_coded(30, 4, 1)})


def _prior(source, *overrides):
    return registry.build_prior(compose_prior_config("tables", [f"source={source}", *overrides]))


def test_no_row_is_both_a_training_and_a_test_row_and_every_row_is_a_row_of_its_table(corpus):
    prior = _prior(corpus)
    batch = prior.sample(np.random.default_rng(0), BatchShape(num_datasets=16, num_rows=100, num_features=8,
                                                              num_train_rows=60))
    assert set(batch.hyperparameters["table"]) == {"big"}  # "small" has 30 rows: left out at 100
    for b in range(16):
        used = batch.x[b, :, :batch.num_features[b]]
        assert (batch.x[b, :, batch.num_features[b]:] == 0).all()
        assert 3 <= batch.num_features[b] <= 6  # half to all of the table's 6 features
        row_ids = np.floor(used / 100).astype(int)
        assert (row_ids == row_ids[:, :1]).all()  # every kept column agrees on the row
        ids = row_ids[:, 0]
        assert len(set(ids)) == 100 and set(ids) <= set(range(120))
        assert not set(ids[:60]) & set(ids[60:])
        columns = np.round(used[0] - 100 * ids[0]).astype(int)
        assert len(set(columns)) == len(columns)  # a subset of distinct columns, in some order


def test_classes_and_category_codes_are_permuted_per_dataset(tmp_path):
    frame = pd.DataFrame({"colour": ["red", "green", "blue"] * 40, "size": np.arange(120.0),
                          "target": ["a"] * 60 + ["b"] * 60})
    prior = _prior(_write_corpus(tmp_path, {"t": frame}), "feature_fraction.low=1.0")
    batch = prior.sample(np.random.default_rng(0), BatchShape(num_datasets=40, num_rows=120, num_features=2,
                                                              num_train_rows=80))
    label_of_a, code_of_red = set(), set()
    for b in range(40):
        size_column = int(np.argmax(batch.x[b].max(0)))  # the numeric column (values up to 119)
        sizes, colours = batch.x[b, :, size_column], batch.x[b, :, 1 - size_column]
        label_of_a.add(float(batch.y[b][sizes < 60][0]))
        code_of_red.add(float(colours[sizes == 0][0]) if (sizes == 0).any() else float(colours[sizes == 3][0]))
    assert label_of_a == {0.0, 1.0} and len(code_of_red) == 3
    assert set(np.unique(batch.num_classes)) == {2}


def test_tables_that_cannot_fill_a_shape_are_left_out_and_none_fitting_is_named(corpus, caplog):
    prior = _prior(corpus)
    with caplog.at_level("INFO"):
        prior.sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=50, num_features=4,
                                                         num_train_rows=25))
    assert "1 of 2 tables left out of batches of 50 rows" in caplog.text and "small" in caplog.text
    with pytest.raises(ConfigError, match=r"no table .* can fill datasets of 500 rows \(the largest, big, has 120\)"):
        prior.sample(np.random.default_rng(0), BatchShape(num_datasets=2, num_rows=500, num_features=4,
                                                         num_train_rows=250))
    with pytest.raises(ConfigError, match="holds no regression tables: set classification=true"):
        _prior(corpus, "classification=false").sample(np.random.default_rng(0), BatchShape(
            num_datasets=1, num_rows=20, num_features=2, num_train_rows=10))
    with pytest.raises(ConfigError, match=r"tables \['nope'\] are not in mine"):
        _prior(corpus, "tables=[nope]").sample(np.random.default_rng(0), BatchShape(
            num_datasets=1, num_rows=20, num_features=2, num_train_rows=10))
    with pytest.raises(ConfigError, match="feature_fraction"):
        _prior(corpus, "feature_fraction.low=0")
    empty = corpus.parent / "empty-corpus"
    empty.mkdir(exist_ok=True)
    with pytest.raises(ConfigError, match=r"empty-corpus holds no manifest\.json: list its tables there"):
        _prior(empty).sample(np.random.default_rng(0), BatchShape(num_datasets=1, num_rows=20, num_features=2,
                                                                  num_train_rows=10))


def test_the_bundled_corpus_is_disjoint_from_the_evaluation_suite():
    from pfnforge.evaluation.suites import load_suite

    corpus, suite = load_suite("corpus"), load_suite("tabular")
    assert not {e.file for e in corpus.entries} & {e.file for e in suite.entries}
    assert not {e.sha256 for e in corpus.entries} & {e.sha256 for e in suite.entries}
    batch = registry.build_prior(compose_prior_config("tables")).sample(
        np.random.default_rng(0), BatchShape(num_datasets=8, num_rows=300, num_features=20, num_train_rows=150))
    assert set(batch.hyperparameters["table"]) <= {e.name for e in corpus.entries if e.task == "classification"}
    assert np.isfinite(batch.y).all() and (batch.num_classes >= 2).all()


def test_a_mixture_with_scm_keeps_its_shares(corpus):
    mixture = registry.build_prior(compose_prior_config("mixture", [
        f"components=[{{prior: scm, weight: 3}}, {{prior: tables, weight: 1, overrides: ['source={corpus}']}}]"]))
    shape = BatchShape(num_datasets=2, num_rows=60, num_features=3, num_train_rows=30)
    drawn = [mixture.sample(np.random.default_rng(seed), shape).prior for seed in range(200)]
    share = np.mean([str(np.asarray(p).ravel()[0]) == "tables" for p in drawn])
    assert abs(share - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 200)


def test_generate_writes_shards_of_real_tables_through_its_workers(corpus, tmp_path, cli_env):
    out = tmp_path / "shards"
    result = subprocess.run([sys.executable, "-m", "pfnforge.cli", "generate", "tables", f"source={corpus}",
                             "--num-batches", "2", "--datasets", "3", "--rows", "40", "--features", "5",
                             "--out", str(out), "--workers", "1"], env=cli_env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    batches = list(ShardSource(out))
    assert len(batches) == 2 and all(rb.num_rows == 3 for rb in batches)
