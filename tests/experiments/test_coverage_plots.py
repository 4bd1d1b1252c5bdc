"""The coverage plots say what they show: axis labels with units, a colorbar, no internal sample indices."""

import types

import numpy as np

from postbc.data.normalizer import MinMaxNormalizer
from postbc.experiments import coverage


class GaussianPolicy:
    chunk, act_dim = 2, 2

    def act(self, obs, noise):
        return 0.3 * np.asarray(noise)


def _dataset(n=40):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    return types.SimpleNamespace(obs=rng.standard_normal((n, 3)).astype(np.float32), actions=actions,
                                 action_normalizer=MinMaxNormalizer(actions.min(0), actions.max(0)),
                                 episode_starts=[0, 20], episode_lengths=[20, 20], demo_names=["demo_0", "demo_1"])


def test_action_density_has_labelled_axes_a_colorbar_and_readable_titles(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(coverage, "save", lambda fig, path: figures.append(fig) or path)
    data, std = _dataset(), np.linspace(0.1, 0.5, 40)
    states = coverage.chosen_states(std, 1)
    coverage.action_density({"bc": GaussianPolicy(), "postbc": GaussianPolicy()}, data, states, std, 64, 0, "t",
                            tmp_path / "a.png")
    (fig,) = figures
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(panels) == 4 and len(colorbars) == 4
    assert all("action dim 0" in ax.get_xlabel() and "action dim 1" in ax.get_ylabel() for ax in panels)
    titles = [ax.get_title() for ax in panels]
    assert any("most scarce demo state #1" in t for t in titles) and any("most dense" in t for t in titles)
    assert not any(str(i) in t.split("#")[0] for _, i in states for t in titles)  # no internal sample index
    assert "clip" in fig._suptitle.get_text()


def test_posterior_std_plot_names_its_units(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(coverage, "save", lambda fig, path: figures.append(fig) or path)
    coverage.std_along_trajectories(np.linspace(0.1, 0.5, 40), _dataset(), "t", tmp_path / "s.png")
    assert "normalized action units" in figures[0].axes[0].get_ylabel()
