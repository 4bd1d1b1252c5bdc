"""Image observations: the flat layout, the encoder's augmentation, and a diffusion policy that must
learn an action that only the image reveals."""

import numpy as np
import pytest
import torch

from postbc.data import DemoDataset
from postbc.data.robomimic import Demo, write_demos
from postbc.errors import PostBCError
from postbc.policies.diffusion import DiffusionConfig, DiffusionPolicy
from postbc.policies.obs_encoder import ObsEncoder, image_layout, random_shift

SIDE = 32


def red_square_images(left: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, SIDE, SIDE, 3) uint8 grey frames with a red 6x6 square in the left or right half, at a random height."""
    images = np.full((len(left), SIDE, SIDE, 3), 90, np.uint8)
    for i, is_left in enumerate(left):
        col = rng.integers(2, 10) if is_left else rng.integers(SIDE - 16, SIDE - 8)
        row = rng.integers(2, SIDE - 8)
        images[i, row: row + 6, col: col + 6] = (230, 20, 20)
    return images


def test_image_layout_finds_image_keys_by_name_and_size():
    layout = image_layout(("pos", "agentview_image", "object", "wrist_image"), (3, 8 * 8 * 3, 5, 16 * 16 * 3))
    assert layout == ((3, 8), (3 + 192 + 5, 16))
    with pytest.raises(PostBCError, match="square RGB"):
        image_layout(("agentview_image",), (100,))


def test_encoder_passes_low_dim_entries_and_encodes_each_image():
    layout = image_layout(("pos", "a_image", "vel"), (2, SIDE * SIDE * 3, 3))
    encoder = ObsEncoder(2 + SIDE * SIDE * 3 + 3, layout, image_features=7).eval()
    obs = torch.randn(4, encoder.low_dim_index.numel() + SIDE * SIDE * 3)
    out = encoder(obs)
    assert out.shape == (4, 5 + 7) and encoder.out_dim == 12
    torch.testing.assert_close(out[:, :5], torch.cat([obs[:, :2], obs[:, -3:]], dim=1))
    torch.testing.assert_close(encoder(obs), out)  # eval: no augmentation, deterministic


def test_random_shift_is_a_crop_of_the_edge_padded_frame():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    shifted = random_shift(images, pad=2, generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    for b in range(2):
        crops = [padded[b, :, r: r + 8, c: c + 8] for r in range(5) for c in range(5)]
        assert any(torch.equal(shifted[b], crop) for crop in crops)


def test_diffusion_policy_learns_an_action_only_the_image_shows():
    """Action +0.8 when the red square is on the right, -0.8 on the left; the low-dim key is noise."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 256
    left = rng.random(n) < 0.5
    images = red_square_images(left, rng).reshape(n, -1).astype(np.float32) / 127.5 - 1.0
    noise_key = rng.normal(size=(n, 2)).astype(np.float32)
    obs = torch.from_numpy(np.concatenate([noise_key, images], axis=1))
    actions = torch.from_numpy(np.where(left, -0.8, 0.8).astype(np.float32)).view(n, 1, 1)
    cfg = DiffusionConfig(obs_dim=obs.shape[1], act_dim=1, chunk=1, hidden=64, layers=2, train_steps=20,
                          inference_steps=4, images=image_layout(("noise", "cam_image"), (2, SIDE * SIDE * 3)),
                          image_features=16)
    policy = DiffusionPolicy(cfg)
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(200):
        idx = torch.randint(0, n, (32,))
        loss = policy.loss(obs[idx], actions[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    policy.eval()
    test_left = rng.random(64) < 0.5
    test_obs = np.concatenate([rng.normal(size=(64, 2)), red_square_images(test_left, rng).reshape(64, -1) / 127.5 - 1.0], 1)
    sampled = policy.sample_ddim(torch.as_tensor(test_obs, dtype=torch.float32), torch.randn(64, 1, 1)).view(-1).numpy()
    assert np.mean(np.sign(sampled) == np.where(test_left, -1, 1)) >= 0.9


def _image_demo(length: int, image: np.ndarray) -> Demo:
    obs = {"pos": np.zeros((length, 2), np.float32), "agentview_image": image}
    return Demo(obs=obs, next_obs=obs, actions=np.zeros((length, 2), np.float32), rewards=np.zeros(length, np.float32),
                dones=np.zeros(length, np.int64))


def test_dataset_maps_pixels_from_0_255_and_refuses_float_frames(tmp_path):
    env_args = {"env_name": "Lift", "type": "robosuite", "env_kwargs": {"task": "lift"}}
    frames = np.random.default_rng(0).integers(100, 120, size=(4, 16, 16, 3), dtype=np.uint8)
    write_demos(tmp_path / "ok.hdf5", [_image_demo(4, frames)], env_args, obs_keys=["pos", "agentview_image"])
    data = DemoDataset.load(tmp_path / "ok.hdf5")
    assert data.obs_dims == (2, 16 * 16 * 3)
    image = data.normalized_obs()[:, 2:]
    np.testing.assert_allclose(image, frames.reshape(4, -1) / 127.5 - 1.0, atol=1e-6)  # not stretched per pixel

    write_demos(tmp_path / "bad.hdf5", [_image_demo(4, frames.astype(np.float32))], env_args)
    with pytest.raises(PostBCError, match=r"demo 'demo_0', image key 'obs/agentview_image' holds float32"):
        DemoDataset.load(tmp_path / "bad.hdf5")
