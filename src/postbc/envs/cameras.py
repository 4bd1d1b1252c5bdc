"""Camera observations: a task's spec with rendered images beside its low-dim keys.

Images are uint8 (S, S, 3) arrays under robomimic's key names, `<camera>_image` (e.g.
`agentview_image`), rendered headless on the CPU (MuJoCo's EGL or OSMesa backend, picked by
`MUJOCO_GL`). `with_cameras(spec, cameras, size)` is the spec of the same task with those image
keys appended: `postbc collect --camera` writes them, and a policy trained on them gets the same
spec back from its own keys (`spec_for_obs_keys`), so eval and finetuning render what it saw.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Sequence

from postbc.envs.registry import TaskSpec
from postbc.errors import PostBCError

IMAGE_SUFFIX = "_image"
CHANNELS = 3
CAMERA_FAMILIES = ("robosuite", "metaworld")  # families whose env renders cameras (the `cameras=` keyword of its make)


def image_key(camera: str) -> str:
    return f"{camera}{IMAGE_SUFFIX}"


def is_image_key(key: str) -> bool:
    return key.endswith(IMAGE_SUFFIX)


def image_side(key: str, flat_dim: int) -> int:
    """The side S of a square RGB image key stored flat as S * S * 3 values."""
    side = math.isqrt(max(flat_dim // CHANNELS, 0))
    if side < 1 or side * side * CHANNELS != flat_dim:
        raise PostBCError(f"observation key '{key}' has {flat_dim} values, not those of a square RGB image (S * S * 3)")
    return side


def use_headless_gl() -> None:
    """Render without a display: EGL unless the user chose a backend (MUJOCO_GL=osmesa also works).
    MuJoCo picks its backend when it is imported, so this must run before the first simulator import."""
    import sys

    if "MUJOCO_GL" not in os.environ and "mujoco" in sys.modules and not os.environ.get("DISPLAY"):
        raise PostBCError("MuJoCo was imported before a headless renderer was chosen and there is no display; "
                          "set MUJOCO_GL=egl (or osmesa) in the environment before starting Python")
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def without_shadows(scene) -> bool:
    """Turn a MuJoCo scene's shadows and reflections off; True if they were on. On a CPU renderer they
    cost 5-10x the rest of a frame (measured: 15 vs 250-800 frames/s of a small scene at 84x84)."""
    import mujoco

    flags = mujoco.mjtRndFlag
    was_on = bool(scene.flags[flags.mjRND_SHADOW] or scene.flags[flags.mjRND_REFLECTION])
    scene.flags[flags.mjRND_SHADOW] = scene.flags[flags.mjRND_REFLECTION] = 0
    return was_on


def with_cameras(spec: TaskSpec, cameras: Sequence[str], size: int) -> TaskSpec:
    """`spec` whose envs also render `cameras` at `size` x `size` pixels (keys `<camera>_image`)."""
    cameras = tuple(cameras)
    if not cameras:
        return spec
    if spec.family not in CAMERA_FAMILIES:
        raise PostBCError(f"task '{spec.name}' ({spec.family}) renders no cameras; image observations are available "
                          f"for the robosuite tasks (lift, can, square), Meta-World (mw-<name>) and mt10")
    if len(set(cameras)) != len(cameras):
        raise PostBCError(f"cameras {list(cameras)} name a camera twice; list each camera once")
    if not 16 <= size <= 512:
        raise PostBCError(f"image size {size} must lie in [16, 512] pixels (robomimic uses 84)")
    use_headless_gl()
    kwargs = {"camera_names": list(cameras), "camera_heights": size, "camera_widths": size,
              "use_camera_obs": True, "has_offscreen_renderer": True}  # robomimic's names for the same setting
    env_args = {**spec.env_args, "env_kwargs": {**spec.env_args["env_kwargs"], **kwargs}}
    return dataclasses.replace(
        spec,
        obs_keys=spec.obs_keys + tuple(image_key(c) for c in cameras),
        obs_dims=spec.obs_dims + (size * size * CHANNELS,) * len(cameras),
        make=functools.partial(spec.make, cameras=cameras, image_size=size),
        env_args=env_args,
        in_process=False,  # rendering costs far more than a pipe round trip
        description=f"{spec.description}, cameras {', '.join(cameras)} at {size}x{size}",
    )


def spec_for_obs_keys(spec: TaskSpec, obs_keys: Sequence[str], obs_dims: Sequence[int]) -> TaskSpec:
    """The spec that produces a policy's keys: `spec` with the cameras its image keys name, observed
    through exactly the policy's keys in its order when they are a subset of what the env gives (a
    robomimic image policy sees proprioception and cameras, not the object state). Keys the env does
    not give leave the spec as it is, for the task checks to name them."""
    images = [(k, d) for k, d in zip(obs_keys, obs_dims) if is_image_key(k)]
    if images:
        sides = {image_side(k, d) for k, d in images}
        if len(sides) > 1:
            raise PostBCError(f"image keys {[k for k, _ in images]} have different sizes {sorted(sides)}; one size is supported")
        spec = with_cameras(spec, [k[: -len(IMAGE_SUFFIX)] for k, _ in images], sides.pop())
    given = dict(zip(spec.obs_keys, spec.obs_dims))
    keys = tuple(obs_keys)
    if keys == spec.obs_keys or any(given.get(k) != int(d) for k, d in zip(keys, obs_dims)):
        return spec
    return dataclasses.replace(spec, obs_keys=keys, obs_dims=tuple(given[k] for k in keys))
