"""The shared-trunk ensemble (K heads on one trunk, the paper's Libero kind): bootstrap weights per
head, and a posterior that is wider where demonstrations are scarce."""

import numpy as np
import torch

from postbc.data.bootstrap import bootstrap_counts
from postbc.policies.shared_ensemble import SharedTrunkEnsemble
from postbc.pretrain.posterior import estimate_posterior, fit_ensemble


def test_a_head_ignores_the_samples_its_resample_left_out():
    torch.manual_seed(0)
    ensemble = SharedTrunkEnsemble(3, in_dim=4, out_dim=2, hidden=16, layers=2)
    x, y = torch.randn(10, 4), torch.randn(10, 2)
    weights = torch.ones(3, 10)
    weights[0, 5:] = 0  # head 0 never saw samples 5..9
    before = ensemble.weighted_loss(x, y, weights)
    y_changed = y.clone()
    y_changed[5:] += 100.0
    after = ensemble.weighted_loss(x, y_changed, weights)
    torch.testing.assert_close(after[0], before[0])
    assert (after[1:] > before[1:] + 100).all()


def test_heads_disagree_where_data_is_scarce(tmp_path):
    """500 samples on [-1, 0], 6 on [0.6, 1]: with state-action bootstrap, the heads' spread (posterior std)
    on the scarce inputs must exceed that on the common ones."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1, 0, 500), rng.uniform(0.6, 1, 6)]).astype(np.float32)[:, None]
    y = np.sin(3 * x) + 0.1 * rng.normal(size=x.shape).astype(np.float32)
    counts = bootstrap_counts("state_action", np.arange(len(x)), 5, rng)
    torch.manual_seed(0)
    ensemble = SharedTrunkEnsemble(5, in_dim=1, out_dim=1, hidden=32, layers=2)
    fit_ensemble(ensemble, torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(counts), epochs=40,
                 batch_size=64, lr=3e-3, generator=torch.Generator().manual_seed(0),
                 checkpoint=tmp_path / "ckpt", quiet=True)
    posterior = estimate_posterior(ensemble, torch.from_numpy(x), "diagonal")
    std = posterior.std().squeeze(-1).numpy()
    assert std[500:].mean() > 2 * std[:500].mean()
    np.testing.assert_allclose(posterior.mean.numpy()[:500], np.sin(3 * x[:500]), atol=0.25)
