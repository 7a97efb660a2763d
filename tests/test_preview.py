"""The preview shows the informative features, train vs test rows, class balance, missingness and the
drawn hyperparameters, for any prior's batch."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from PIL import Image

from pfnforge import registry
from pfnforge.batch import PriorBatch
from pfnforge.config import compose_prior_config
from pfnforge.preview import plot_batch, preview_figure
from pfnforge.prior import BatchShape


def _batch(x: np.ndarray, y: np.ndarray, num_classes: int, **hyperparameters: np.ndarray) -> PriorBatch:
    return PriorBatch(x=x.astype(np.float32), y=y.astype(np.float32), num_rows=x.shape[1],
                      num_features=x.shape[2], num_train_rows=x.shape[1] // 2, num_classes=num_classes, prior="t",
                      hyperparameters=hyperparameters)


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


@pytest.mark.parametrize("name", sorted(registry.discover()))
def test_every_installed_prior_gets_every_panel(name):
    prior = registry.build_prior(compose_prior_config(name))
    batch = prior.sample(np.random.default_rng(0), BatchShape(num_datasets=16, num_rows=40, num_features=3,
                                                              num_train_rows=20))
    fig = preview_figure(batch, title=name, max_datasets=4)
    titles = _titles(fig)
    assert all(t.startswith(f"#{b} [") for b, t in enumerate(titles[:4]))  # four sample datasets
    assert any(t.startswith(("class balance", "targets, standardised")) for t in titles)
    assert any(t.startswith(("missing", "missing values")) for t in titles)
    varied = [k for k, v in batch.hyperparameters.items() if len({str(x) for x in v}) > 1]
    assert set(sorted(varied)[:12]) <= set(titles) | {t.split(" (")[0] for t in titles}  # a panel per drawn value
    plt.close(fig)


def test_preview_png_is_small_and_four_panels_wide(tmp_path):
    prior = registry.build_prior(compose_prior_config("bnn", ["classification=true"]))
    batch = prior.sample(np.random.default_rng(0), BatchShape(num_datasets=64, num_rows=100, num_features=3,
                                                              num_train_rows=50))
    out = plot_batch(batch, tmp_path / "p.png", title="bnn", dpi=90)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width == 12 * 90 and image.mode == "P"  # 256-colour palette
    assert out.stat().st_size < 150_000


def test_regression_scatter_shows_the_feature_the_target_depends_on_train_filled_test_hollow():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 50, 4))
    y = 3 * x[:, :, 2] + 0.1 * rng.standard_normal((1, 50))
    fig = preview_figure(_batch(x, y, 0), title="t", max_datasets=1)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "x2"
    train, test = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert np.allclose(train.get_offsets(), np.c_[x[0, :25, 2], y[0, :25]], atol=1e-5)
    assert np.allclose(test.get_offsets(), np.c_[x[0, 25:, 2], y[0, 25:]], atol=1e-5)
    assert np.all(train.get_facecolors()[:, 3] > 0)  # filled
    assert len(test.get_facecolors()) == 0 or np.all(test.get_facecolors()[:, 3] == 0)  # hollow
    plt.close(fig)


def test_classification_scatter_uses_the_two_separating_features_coloured_by_class():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 80, 5))
    y = (x[:, :, 1] > 0).astype(int) + 2 * (x[:, :, 3] > 0)  # four classes cut by x1 and x3
    fig = preview_figure(_batch(x, y, 4), title="t", max_datasets=2)
    ax = fig.axes[0]
    assert {ax.get_xlabel(), ax.get_ylabel()} == {"x1", "x3"}
    train = next(c for c in ax.collections if isinstance(c, PathCollection))
    colours = {tuple(c) for c in np.round(train.get_facecolors(), 3)}
    assert len(colours) == len(np.unique(y[0, :40]))  # one colour per class present
    assert any("class balance (2 datasets; 4–4 classes)" in t for t in _titles(fig))
    plt.close(fig)


def test_missing_panel_shows_the_dataset_with_the_most_missing_values():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 50, 2))
    x[3, :30, 0] = np.nan  # 30 of 100 entries of dataset 3
    x[1, :5, 1] = np.nan
    fig = preview_figure(_batch(x, x[:, :, 1] * 0, 0), title="t", max_datasets=1)
    assert any(t.startswith("missing (black): #3, 30%; batch 8.8%") for t in _titles(fig))
    plt.close(fig)
    no_missing = preview_figure(_batch(np.nan_to_num(x), x[:, :, 1] * 0, 0), title="t", max_datasets=1)
    assert any("no missing values" in t.get_text() for ax in no_missing.axes for t in ax.texts)
    plt.close(no_missing)


def test_hyperparameter_panels_count_choices_and_skip_what_was_never_drawn():
    x = np.random.default_rng(3).standard_normal((6, 10, 1))
    fig = preview_figure(_batch(x, x[:, :, 0], 0, kind=np.array(["a", "b", "a", "a", None, "b"], dtype=object),
                                scale=np.arange(1.0, 7.0), fixed=np.full(6, 0.5), absent=np.full(6, np.nan)),
                         title="t", max_datasets=1)
    titles = _titles(fig)
    assert "absent" not in titles and {"kind", "scale", "fixed"} <= set(titles)
    kind_ax = fig.axes[titles.index("kind")]
    assert [p.get_height() for p in kind_ax.patches] == [3, 2]  # a: 3, b: 2 (None left out)
    scale_ax = fig.axes[titles.index("scale")]
    assert sum(p.get_height() for p in scale_ax.patches) == 6
    assert "fixed = 0.5" in fig.axes[titles.index("fixed")].texts[0].get_text()
    plt.close(fig)
