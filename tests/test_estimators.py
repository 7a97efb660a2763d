"""PFNClassifier / PFNRegressor: scikit-learn's own estimator checks, accuracy of the bundled models against
standard baselines, preprocessing and ensembling behaviour, and a clear error for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from pfnforge import PFNClassifier, PFNRegressor
from pfnforge.errors import InputError
from pfnforge.inference.artifact import build_random_pfn
from pfnforge.model.pfn import ModelConfig

EXPECTED_FAILURES = {
    "check_dtype_object": "an object column holding a dict raises pfnforge's InputError (a ValueError naming the "
                          "column and the fix), not the TypeError of numpy's conversion",
    "check_methods_subset_invariance": "the float32 forward pass rounds differently (~1e-7) when a row is batched "
                                       "with other rows; the check's tolerance is 1e-7 (test_chunked_queries_"
                                       "equal_one_pass checks subsets at 1e-5)",
}


@parametrize_with_checks([PFNClassifier(), PFNRegressor(n_estimators=2)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILURES)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _blobs(rng: np.random.Generator, num_rows: int = 120, num_features: int = 4, num_classes: int = 3):
    centers = rng.normal(scale=3, size=(num_classes, num_features))
    y = rng.integers(0, num_classes, num_rows)
    return centers[y] + rng.normal(size=(num_rows, num_features)), y


def test_chunked_queries_equal_one_pass():
    rng = np.random.default_rng(0)
    X, y = _blobs(rng)
    one = PFNClassifier().fit(X[:80], y[:80]).predict_proba(X[80:])
    chunked = PFNClassifier(inference_chunk_rows=7).fit(X[:80], y[:80]).predict_proba(X[80:])
    np.testing.assert_allclose(chunked, one, atol=1e-5)
    assert one.shape == (40, 3) and np.allclose(one.sum(1), 1)


def test_labels_of_any_type_give_the_same_probabilities():
    rng = np.random.default_rng(1)
    X, y = _blobs(rng)
    names = np.array(["cat", "dog", "emu"])
    ints = PFNClassifier().fit(X[:80], y[:80])
    strings = PFNClassifier().fit(X[:80], names[y[:80]])
    np.testing.assert_allclose(strings.predict_proba(X[80:]), ints.predict_proba(X[80:]), atol=1e-6)
    assert set(strings.predict(X[80:])) <= set(names) and list(strings.classes_) == list(names)


def test_members_differ_and_random_state_fixes_them():
    rng = np.random.default_rng(2)
    X, y = _blobs(rng)
    a = PFNClassifier(n_estimators=3, random_state=0).fit(X[:80], y[:80]).predict_proba(X[80:])
    b = PFNClassifier(n_estimators=3, random_state=0).fit(X[:80], y[:80]).predict_proba(X[80:])
    c = PFNClassifier(n_estimators=3, random_state=1).fit(X[:80], y[:80]).predict_proba(X[80:])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c, atol=1e-4)
    one = PFNClassifier(n_estimators=1, transforms=("none",)).fit(X[:80], y[:80]).ensemble_.members
    assert len(one) == 1 and one[0].transform.value == "none"


def test_categorical_columns_by_dtype_or_by_name_agree_and_missing_values_pass_through():
    rng = np.random.default_rng(3)
    colour = rng.choice(["red", "green", "blue"], 100)
    x = rng.normal(size=100)
    x[::7] = np.nan
    y = ((colour == "red") ^ (np.nan_to_num(x) > 0)).astype(int)
    named = pd.DataFrame({"x": x, "colour": colour})
    typed = named.assign(colour=pd.Categorical(colour))
    by_name = PFNClassifier(categorical_features=["colour"]).fit(named[:70], y[:70])
    by_dtype = PFNClassifier().fit(typed[:70], y[:70])
    np.testing.assert_allclose(by_name.predict_proba(named[70:]), by_dtype.predict_proba(typed[70:]), atol=1e-6)
    unseen = named[70:].assign(colour="purple")  # an unseen category is read as missing
    assert np.isfinite(by_name.predict_proba(unseen)).all()
    with pytest.raises(InputError, match=r"column 'colour' holds strings .* declare it categorical"):
        PFNClassifier().fit(named, y)


def test_regressor_quantiles_are_ordered_and_cover_held_out_targets():
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(300, 3))
    y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=300)
    model = PFNRegressor().fit(X[:200], 100 + 50 * y[:200])  # not standardised: checks the units come back
    q = model.predict(X[200:], output="quantiles", quantiles=[0.1, 0.5, 0.9])
    assert (np.diff(q, axis=1) > 0).all()
    inside = ((100 + 50 * y[200:] >= q[:, 0]) & (100 + 50 * y[200:] <= q[:, 2])).mean()
    assert 0.6 <= inside <= 0.97, inside
    np.testing.assert_allclose(model.predict(X[200:], output="median"), q[:, 1], rtol=1e-5)
    mean = model.predict(X[200:])
    assert 1 - ((100 + 50 * y[200:] - mean) ** 2).mean() / (50 * y[200:]).var() > 0.5


def _small() -> PFNClassifier:
    return PFNClassifier(build_random_pfn(ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=4,
                                                      max_classes=3, num_buckets=10), max_rows=50))


def _small_regressor() -> PFNRegressor:
    return PFNRegressor(_small().model)


def test_beyond_the_limits_the_defaults_subsample_and_say_so_once():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(80, 6)), rng.integers(0, 2, 80)
    with pytest.warns(UserWarning, match="pretraining limits") as caught:
        model = _small().set_params(n_estimators=3).fit(X, y)
    limit_warnings = [w for w in caught if "pretraining limits" in str(w.message)]
    assert len(limit_warnings) == 1
    message = str(limit_warnings[0].message)
    assert "80 training rows > the 50" in message and "6 informative features > the 4" in message
    assert "subsample_train_rows=False" in message and "ignore_pretraining_limits=True" in message
    assert all(len(m.rows) == 50 for m in model.ensemble_.members)
    assert model.ensemble_.x_train_MTF.shape == (3, 50, 4)
    assert model.predict_proba(rng.normal(size=(5, 6))).shape == (5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the limits: not a word
        _small().fit(X[:30, :3], y[:30])


def test_explicit_refusals_name_the_fix():
    rng = np.random.default_rng(5)
    with pytest.raises(InputError, match=r"6 informative \(non-constant\) features; this model takes at most 4: "
                                         r"pass subsample_features=True"):
        _small().set_params(subsample_features=False).fit(rng.normal(size=(30, 6)), rng.integers(0, 2, 30))
    with pytest.raises(InputError, match=r"80 training rows; .* at most 50 rows: pass subsample_train_rows=True.*"
                                         r"ignore_pretraining_limits=True"):
        _small().set_params(subsample_train_rows=False).fit(rng.normal(size=(80, 2)), rng.integers(0, 2, 80))
    everything = _small().set_params(ignore_pretraining_limits=True).fit(rng.normal(size=(80, 2)),
                                                                          rng.integers(0, 2, 80))
    assert everything.ensemble_.x_train_MTF.shape[1] == 80
    with pytest.raises(InputError, match="feature_reduction='svd' is unknown: choose one of subsample, pca, mixed"):
        _small().set_params(feature_reduction="svd").fit(rng.normal(size=(30, 2)), rng.integers(0, 2, 30))


def test_more_classes_than_the_head_are_coded_onto_groups():
    rng = np.random.default_rng(8)
    centers = rng.normal(size=(7, 2)) * 6
    labels = np.arange(140) % 7
    X = centers[labels] + rng.normal(size=(140, 2)) * 0.3
    with pytest.warns(UserWarning, match="7 classes > the 3 of its head"):
        model = _small().set_params(n_estimators=2).fit(X[:100], labels[:100])
    codes = np.stack([m.class_permutation for m in model.ensemble_.members])
    assert codes.max() < 3 and len(codes) >= 8  # never fewer members than it takes to tell classes apart
    assert all(np.bincount(code).max() - np.bincount(code).min() <= 1 for code in codes)  # balanced groups
    words = {tuple(column) for column in codes.T}
    assert len(words) == 7  # every class its own code word
    proba = model.predict_proba(X[100:])
    assert proba.shape == (40, 7) and np.allclose(proba.sum(1), 1)
    assert len(np.unique(proba.argmax(1))) > 1  # the classes are told apart, not collapsed onto groups


def test_the_bundled_classifier_separates_more_classes_than_its_head():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(15, 3)) * 5  # 15 well-separated classes; the head has 10
    labels = np.arange(300) % 15
    X = centers[labels] + rng.normal(size=(300, 3)) * 0.5
    with pytest.warns(UserWarning, match="15 classes > the 10"):
        model = PFNClassifier(n_estimators=2).fit(X[:200], labels[:200])
    assert (model.predict(X[200:]) == labels[200:]).mean() > 0.9  # groups alone could name at most 10 of 15


def test_constant_columns_are_never_shown_and_do_not_count_against_the_limit():
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.normal(size=(30, 3)), np.zeros(30), np.full(30, 7.0), rng.normal(size=(30, 1))])
    y = (x[:, 0] > 0).astype(int)
    model = _small().set_params(n_estimators=3).fit(x, y)  # 6 columns, 4 informative: within the limit of 4
    assert all(sorted(m.features) == [0, 1, 2, 5] for m in model.ensemble_.members)
    x_test = rng.normal(size=(8, 6))
    x_changed = x_test.copy()
    x_changed[:, 3:5] = rng.normal(size=(8, 2)) * 100  # the ignored columns can be anything at predict time
    np.testing.assert_allclose(model.predict_proba(x_test), model.predict_proba(x_changed), rtol=0, atol=0)
    missing = np.column_stack([x[:, :3], np.where(np.arange(30) % 2, np.nan, 1.0)])  # constant but half missing
    assert 3 in _small().fit(missing, y).ensemble_.informative


def test_pca_reduction_shows_each_member_the_leading_components_of_all_columns():
    rng = np.random.default_rng(7)
    latent = rng.normal(size=(40, 2))
    x = np.column_stack([latent @ rng.normal(size=(2, 8)), 0.01 * rng.normal(size=(40, 2))])  # rank ~2 of 10 columns
    y = (latent[:, 0] > 0).astype(int)
    model = _small().set_params(subsample_features=True, feature_reduction="pca", n_estimators=4,
                                transforms=("none",)).fit(x, y)
    for member, context_TF in zip(model.ensemble_.members, model.ensemble_.x_train_MTF, strict=True):
        assert member.projection is not None and sorted(member.features) == list(range(10))
        assert context_TF.shape == (40, 4)  # the model's 4 features, each a component of all 10 columns
        # principal components are uncorrelated (and each standardised to unit variance)
        assert np.allclose(np.corrcoef(context_TF.T), np.eye(4), atol=1e-3)
    mixed = _small().set_params(subsample_features=True, feature_reduction="mixed", n_estimators=4).fit(x, y)
    assert [m.projection is not None for m in mixed.ensemble_.members] == [False, True, False, True]
    assert all(len(m.features) == 4 for m in mixed.ensemble_.members[::2])
    proba = model.predict_proba(x[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(1), 1)


def test_row_subsampling_gives_classifier_members_their_own_subsets_and_regressors_one():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(120, 2)), rng.integers(0, 2, 120)
    classifier = _small().set_params(subsample_train_rows=True, n_estimators=3).fit(x, y)  # limit: 50 rows
    subsets = [m.rows for m in classifier.ensemble_.members]
    assert all(len(rows) == 50 and len(set(rows)) == 50 for rows in subsets)
    assert len({tuple(rows) for rows in subsets}) == 3
    assert classifier.ensemble_.x_train_MTF.shape[:2] == (3, 50)
    assert classifier.predict_proba(x[:7]).shape == (7, 2)
    target = x[:, 0] * 3 + 10
    regressor = _small_regressor().set_params(subsample_train_rows=True, n_estimators=3).fit(x, target)
    rows = regressor.ensemble_.members[0].rows
    assert len(rows) == 50 and all(np.array_equal(m.rows, rows) for m in regressor.ensemble_.members)
    context = (target[rows] - target.mean()) / target.std()
    # the model's own target scale over the shared rows: their variance shrunk toward one by one pseudo-row
    assert regressor._z_shift == pytest.approx(context.mean())
    assert regressor._z_scale == pytest.approx(np.sqrt((50 * context.var() + 1) / 51))
    assert np.isfinite(regressor.predict(x[:7])).all()


@pytest.mark.parametrize(("X", "y", "fragment"), [
    (np.ones((5, 2)), [0, 1, np.nan, 1, 0], "NaN or infinite"),
    (np.ones((5, 2)), [0, 1, np.inf, 1, 0], "NaN or infinite"),
    (np.ones((5, 2)), [1, 1, 1, 1, 1], "one class"),
    (pd.DataFrame({"a": []}), [], "empty"),
    (np.ones((5, 0)), [0, 1, 0, 1, 0], "0 feature"),
    (np.ones((5, 2)), [0, 1, 0], "5 rows but y has 3"),
    (np.array([[1.0, np.inf]] * 4), [0, 1, 0, 1], "infinite values"),
])
def test_bad_training_data_is_refused_with_a_clear_error(X, y, fragment):
    with pytest.raises(InputError, match=fragment):
        _small().fit(X, y)


def test_predicting_other_columns_than_fit_is_an_error():
    frame = pd.DataFrame({"a": [0.0, 1, 2, 3], "b": [1.0, 0, 1, 0]})
    model = _small().fit(frame, [0, 1, 0, 1])
    with pytest.raises(InputError, match="Feature names unseen at fit time:\n- c"):
        model.predict(frame.rename(columns={"b": "c"}))
    with pytest.raises(InputError, match="X has 1 features, but PFNClassifier is expecting 2"):
        model.predict(np.ones((2, 1)))
    with pytest.raises(InputError, match="not a torch device"):
        _small().set_params(device="gpu0").fit(frame, [0, 1, 0, 1])


def test_predict_command_writes_predictions_and_exits_2_on_bad_input(tmp_path, cli_env):
    rng = np.random.default_rng(6)
    X, y = _blobs(rng, num_rows=60, num_classes=2)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]).assign(label=y)
    frame[:40].to_csv(tmp_path / "train.csv", index=False)
    frame[40:].to_parquet(tmp_path / "test.parquet")
    run = [sys.executable, "-m", "pfnforge.cli", "predict", "--train", str(tmp_path / "train.csv"),
           "--test", str(tmp_path / "test.parquet")]
    done = subprocess.run([*run, "--target", "label", "--out", str(tmp_path / "p.csv"), "--proba"],
                          capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns) == ["prediction", "proba_0", "proba_1"] and len(predictions) == 20
    assert (predictions["prediction"] == y[40:]).mean() > 0.8
    bad = subprocess.run([*run, "--target", "nope", "--out", str(tmp_path / "q.csv")], capture_output=True,
                         text=True, env=cli_env, timeout=120)
    assert bad.returncode == 2 and "--target 'nope' is not a column" in bad.stderr


def test_predict_command_takes_wide_and_long_data_by_default_and_refuses_on_request(tmp_path, cli_env):
    """The bundled classifier takes 20 features and 300 training rows: beyond them the command subsamples and
    says so; with --no-subsample-* it refuses, naming its own flag."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 30))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(30)]).assign(label=y)
    frame[:350].to_csv(tmp_path / "train.csv", index=False)
    frame[350:].to_csv(tmp_path / "test.csv", index=False)
    run = [sys.executable, "-m", "pfnforge.cli", "predict", "--train", str(tmp_path / "train.csv"), "--target",
           "label", "--test", str(tmp_path / "test.csv"), "--out", str(tmp_path / "p.csv")]
    done = subprocess.run(run, capture_output=True, text=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "350 training rows > the 300" in done.stderr and "30 informative features > the 20" in done.stderr
    assert (pd.read_csv(tmp_path / "p.csv")["prediction"] == y[350:]).mean() > 0.8
    refused = subprocess.run([*run, "--no-subsample-train-rows"], capture_output=True, text=True, env=cli_env,
                             timeout=120)
    assert refused.returncode == 2 and "--subsample-train-rows" in refused.stderr
    narrow = subprocess.run([*run, "--no-subsample-features"], capture_output=True, text=True, env=cli_env,
                            timeout=120)
    assert narrow.returncode == 2 and "--subsample-features" in narrow.stderr


def test_bar_quantiles_invert_the_numerically_integrated_density():
    import torch

    from pfnforge.inference.distribution import bar_mean, bar_quantiles
    from pfnforge.model.bar import BarDistribution, fit_borders

    torch.manual_seed(0)
    bar = BarDistribution(fit_borders(torch.randn(10_000), 30))
    logits_TN = 2 * torch.randn(3, 30)
    levels = torch.tensor([0.001, 0.05, 0.3, 0.5, 0.8, 0.99, 0.999])
    quantiles_TQ = bar_quantiles(bar, torch.softmax(logits_TN, -1), levels)
    for t in range(3):
        for q, value in zip(levels.tolist(), quantiles_TQ[t].tolist(), strict=True):
            y = torch.linspace(-40, value, 200_001)
            density = bar.log_density(logits_TN[t].expand(1, len(y), 30), y[None]).exp().double()[0]
            assert torch.trapezoid(density, y.double()).item() == pytest.approx(q, abs=1e-3)
    y = torch.linspace(-40, 40, 400_001)
    density_TY = bar.log_density(logits_TN[:, None].expand(3, len(y), 30), y.expand(3, -1)).exp().double()
    torch.testing.assert_close(bar_mean(bar, torch.softmax(logits_TN, -1)).double(),
                               torch.trapezoid(density_TY * y.double(), y.double(), dim=-1), atol=2e-3, rtol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_predictions_match_cpu():
    rng = np.random.default_rng(7)
    X, y = _blobs(rng)
    cpu = PFNClassifier().fit(X[:80], y[:80]).predict_proba(X[80:])
    gpu = PFNClassifier(device="cuda").fit(X[:80], y[:80]).predict_proba(X[80:])
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


@pytest.mark.parametrize("standardize", [True, False])
def test_regressor_mean_is_the_models_own_bar_mean_in_target_units(standardize):
    import torch

    # no shrinkage of the target spread: the estimator (which standardises first) and the model fed raw targets
    # then see the same standardised values
    config = ModelConfig(embed_dim=16, num_layers=1, num_heads=2, max_features=2, num_buckets=20,
                         enable_standardization=standardize, target_spread_prior_weight=0.0)
    trained = build_random_pfn(config, classification=False, seed=3)
    rng = np.random.default_rng(8)
    x = rng.uniform(-2, 2, size=(40, 1))
    y = 300 + 40 * np.sin(x[:, 0]) + rng.normal(size=40) if standardize else np.sin(x[:, 0])
    ours = PFNRegressor(trained, n_estimators=1, transforms=("none",)).fit(x[:30], y[:30]).predict(x[30:])
    with torch.no_grad():
        logits, y_mean, y_std = trained.model(torch.tensor(x[None], dtype=torch.float32),
                                              torch.tensor(y[None], dtype=torch.float32), 30, False)
    direct = (trained.model.bar.mean(logits) * y_std + y_mean)[0].double().numpy()
    np.testing.assert_allclose(ours, direct, rtol=1e-4, atol=1e-3 * (40 if standardize else 1))


@pytest.mark.parametrize("dataset", ["iris", "wine", "breast_cancer"])
def test_bundled_classifier_ranks_nearly_as_well_as_logistic_regression(dataset):
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    pfn = PFNClassifier(n_estimators=8, subsample_features=True).fit(X_train, y_train).predict_proba(X_test)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X_train, y_train)

    def auc(probs):
        return roc_auc_score(y_test, probs[:, 1] if probs.shape[1] == 2 else probs, multi_class="ovr")

    assert auc(pfn) > auc(linear.predict_proba(X_test)) - 0.06
    assert (pfn.argmax(1) == y_test).mean() > 0.75


def test_bundled_regressor_beats_linear_regression_on_a_smooth_function():
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(9)
    X = rng.uniform(size=(300, 3))
    y = np.sin(6 * X[:, 0]) + X[:, 1] * X[:, 2] + 0.1 * rng.normal(size=300)
    pfn = PFNRegressor(n_estimators=8).fit(X[:150], y[:150]).predict(X[150:])
    linear = LinearRegression().fit(X[:150], y[:150]).predict(X[150:])
    assert r2_score(y[150:], pfn) > max(0.85, r2_score(y[150:], linear) + 0.1)


@pytest.mark.parametrize("scale", [1e-200, 1e-3, 1e200, 1e300])
def test_regression_predictions_scale_with_the_target_at_any_magnitude(scale):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 3))
    y = X[:, 0] * 2 + rng.normal(size=60) * 0.1
    model = _small_regressor().set_params(n_estimators=2)
    expected = model.fit(X[:40], y[:40]).predict(X[40:])
    scaled = model.fit(X[:40], y[:40] * scale).predict(X[40:])
    assert np.isfinite(scaled).all()  # 1e200 used to overflow the squares of the spread: all NaN
    np.testing.assert_allclose(scaled / scale, expected, rtol=1e-9, atol=1e-12)
