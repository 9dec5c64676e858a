"""gymnasium's check_env and the vector checker on every registered native env (a file of its
own so that pytest-xdist's loadfile can balance it against test_gymnasium_export.py)."""

import gymnasium
import gymnax
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.gymnasium_export import to_gymnasium
from envs.gymnasium_vector import check_vector_env, to_gymnasium_vector
from envs.manipulation import MULTI_TASK_ENVS


def native_names() -> list[str]:
    return [n for n in envs.registered() if n not in gymnax.registered_envs and not n.startswith(("brax-", "dmc-"))]


# Catch: a gymnax env whose observations (float32) differ in dtype from its declared space (int32)
NAMES = native_names() + ["Catch-bsuite"]


def family(name: str) -> str:
    return "manipulation" if name.endswith("-v3") or name in MULTI_TASK_ENVS else name.split("-")[0]


@pytest.mark.parametrize("name", NAMES)
def test_check_env_and_vector_checker(name):
    """Every native env passes gymnasium's check_env and the vector checker, and its observations
    stay in the observation space on tasks drawn from its task space (the space must hold for
    every task). The
    single env runs the one-copy SAME_STEP vector program, so all of this is one compile."""
    env = to_gymnasium(name, seed=1)
    check_env(env, skip_render_check=True)
    if name.endswith("-v3"):  # Meta-World's interfaces
        assert env.observation_space.shape == (39,)
        assert env.action_space == gymnasium.spaces.Box(-1, 1, (4,), np.float32)
    base, params = envs.make(name)
    env.action_space.seed(0)
    for i, key in enumerate(jax.random.split(jax.random.key(2), 3)):
        # every free field drawn uniformly from its bounds, eagerly (no compile per env): any task
        # in the task space's box, a superset of what the env's own sampler draws
        obs, _ = env.reset(seed=i, options={"params": base.task_space.uniform(key)})
        for _ in range(8):
            assert obs in env.observation_space
            obs, reward, term, trunc, _ = env.step(env.action_space.sample())
            assert isinstance(reward, float) and isinstance(term, bool) and isinstance(trunc, bool)
            if term or trunc:
                obs, _ = env.reset()
    check_vector_env(to_gymnasium_vector(base, 1, params=params, autoreset_mode="same_step"), steps=8)


@pytest.mark.parametrize("name", sorted({family(n): n for n in reversed(NAMES)}.values()))
def test_vector_checker_next_step_with_a_task_per_copy(name):
    """NEXT_STEP mode with three copies on three sampled tasks, one env per family."""
    base, params = envs.make(name)
    tasks = jax.jit(base.task_space.sample_batch, static_argnums=1)(jax.random.key(2), 3)
    report = check_vector_env(to_gymnasium_vector(base, 3, params=params, tasks=tasks), steps=12)
    assert report["steps"] == 12
