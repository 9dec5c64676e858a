"""K-armed bandits with structured task distributions, for meta-RL / in-context RL.

An episode is ``max_steps_in_episode`` pulls of the same bandit (the task); it
never terminates, it is truncated at the time limit. The agent must infer the
arm means from its own history, so the observation carries that history's
latest step:

``obs = [one_hot(last_action, num_arms), last_reward, t / T]`` (float32,
length ``num_arms + 2``; zeros for the action and reward at ``t = 0``).

Rewards: ``kind="bernoulli"`` draws ``Bernoulli(arm_means[a])``;
``kind="gaussian"`` draws ``Normal(arm_means[a], arm_stds[a])`` (``arm_stds``
is ignored by Bernoulli bandits).

Task distributions (``arm_distribution``):

* ``"uniform"``: independent ``U[0, 1]`` means (Duan et al., RL^2).
* ``"one_good_arm"``: a uniformly chosen arm has mean ``good_mean``, the others
  ``bad_mean`` (the informative-arm style bandits of Wang et al.).
* ``"dependent"`` (alias ``"correlated"``): two arms with means ``p`` and
  ``1 - p``, ``p ~ U[0, 1]`` (Wang et al.'s dependent bandits).

``info["regret"]`` is the expected (pseudo-)regret of the pull:
``max_i mu_i - mu_a``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from envs.core import EnvState, Environment, StaticIdentity, spaces
from envs.registry import register
from envs.task_space import Field, TaskSpace

KINDS = ("bernoulli", "gaussian")
ARM_DISTRIBUTIONS = ("uniform", "one_good_arm", "dependent", "correlated")
DEFAULT_GAUSSIAN_STD = 0.1


@struct.dataclass
class BanditParams:
    arm_means: jax.Array  # float32 [num_arms]
    arm_stds: jax.Array  # float32 [num_arms], Gaussian bandits only
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class BanditState(EnvState):
    last_action: jax.Array  # int32, -1 before the first pull
    last_reward: jax.Array  # float32


def best_arm_mean(params: BanditParams) -> jax.Array:
    """Expected reward of the best arm (the per-pull return of an oracle)."""
    return jnp.max(params.arm_means, axis=-1)


def pull_regret(params: BanditParams, action: jax.Array) -> jax.Array:
    """Expected regret of pulling ``action``: ``max_i mu_i - mu_action``."""
    return best_arm_mean(params) - jnp.take(params.arm_means, action, axis=-1)


def cumulative_regret(params: BanditParams, actions: jax.Array) -> jax.Array:
    """Expected regret summed over a sequence of pulls ``actions`` ([T] ints)."""
    return jnp.sum(best_arm_mean(params) - params.arm_means[actions])


def oracle_return(params: BanditParams) -> jax.Array:
    """Expected episode return of always pulling the best arm."""
    return best_arm_mean(params) * jnp.asarray(params.max_steps_in_episode, jnp.float32)


class Bandit(StaticIdentity, Environment):
    """Stateless k-armed bandit; ``params`` holds the arm distributions."""

    def __init__(
        self,
        num_arms: int = 5,
        kind: str = "bernoulli",
        arm_distribution: str = "uniform",
        good_mean: float = 0.9,
        bad_mean: float = 0.1,
        max_steps_in_episode: int = 100,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"Bandit: kind must be one of {KINDS}, got {kind!r}")
        if arm_distribution not in ARM_DISTRIBUTIONS:
            raise ValueError(f"Bandit: arm_distribution must be one of {ARM_DISTRIBUTIONS}, got {arm_distribution!r}")
        if int(num_arms) != num_arms or num_arms < 2:
            raise ValueError(f"Bandit: num_arms must be an integer >= 2, got {num_arms!r}")
        if arm_distribution in ("dependent", "correlated") and num_arms != 2:
            raise ValueError(f"Bandit: arm_distribution {arm_distribution!r} needs num_arms=2, got {num_arms}")
        if not 0.0 <= bad_mean <= good_mean <= 1.0:
            raise ValueError(f"Bandit: need 0 <= bad_mean <= good_mean <= 1, got {bad_mean}, {good_mean}")
        if int(max_steps_in_episode) != max_steps_in_episode or max_steps_in_episode < 1:
            raise ValueError(f"Bandit: max_steps_in_episode must be a positive integer, got {max_steps_in_episode!r}")
        self.num_arms, self.kind = int(num_arms), kind
        self.arm_distribution = "dependent" if arm_distribution == "correlated" else arm_distribution
        self.good_mean, self.bad_mean = float(good_mean), float(bad_mean)
        self.max_steps = int(max_steps_in_episode)
        with jax.ensure_compile_time_eval():  # concrete even when built inside jit
            self._default = self.sample_task(jax.random.PRNGKey(0))

    def _static(self) -> tuple:
        return (self.num_arms, self.kind, self.arm_distribution, self.good_mean, self.bad_mean, self.max_steps)



    @property
    def name(self) -> str:
        return f"Bandit-{self.kind}"

    @property
    def num_actions(self) -> int:
        return self.num_arms

    @property
    def default_params(self) -> BanditParams:
        return self._default

    def action_space(self, params: BanditParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_arms)

    def observation_space(self, params: BanditParams | None = None) -> spaces.Box:
        low = jnp.zeros(self.num_arms + 2).at[self.num_arms].set(-jnp.inf if self.kind == "gaussian" else 0.0)
        high = jnp.ones(self.num_arms + 2).at[self.num_arms].set(jnp.inf if self.kind == "gaussian" else 1.0)
        return spaces.Box(low, high, (self.num_arms + 2,), jnp.float32)

    # --- tasks -----------------------------------------------------------------
    def sample_task(self, key: jax.Array) -> BanditParams:
        """One bandit from ``arm_distribution``."""
        k = self.num_arms
        if self.arm_distribution == "uniform":
            means = jax.random.uniform(key, (k,))
        elif self.arm_distribution == "one_good_arm":
            good = jax.random.randint(key, (), 0, k)
            means = jnp.where(jnp.arange(k) == good, self.good_mean, self.bad_mean)
        else:  # dependent: p and 1 - p
            p = jax.random.uniform(key)
            means = jnp.stack([p, 1.0 - p])
        return BanditParams(
            arm_means=means.astype(jnp.float32),
            arm_stds=jnp.full((k,), DEFAULT_GAUSSIAN_STD, jnp.float32),
            max_steps_in_episode=jnp.asarray(self.max_steps, jnp.int32),
        )

    @property
    def task_space(self) -> TaskSpace:
        fields = [Field("arm_means", 0.0, 1.0, (self.num_arms,))]
        if self.kind == "gaussian":
            fields.append(Field("arm_stds", 0.01, 1.0, (self.num_arms,)))
        return TaskSpace(self._default, fields, sampler=self.sample_task, name=self.name)

    # --- dynamics ----------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: BanditParams) -> tuple[jax.Array, BanditState]:
        state = BanditState(
            time=jnp.zeros((), jnp.int32),
            last_action=jnp.full((), -1, jnp.int32),
            last_reward=jnp.zeros((), jnp.float32),
        )
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: BanditState, action: Any, params: BanditParams):
        action = jnp.clip(jnp.asarray(action, jnp.int32), 0, self.num_arms - 1)
        mean = params.arm_means[action]
        if self.kind == "bernoulli":
            reward = jax.random.bernoulli(key, mean).astype(jnp.float32)
        else:
            reward = mean + params.arm_stds[action] * jax.random.normal(key)
        new_state = BanditState(time=state.time + 1, last_action=action, last_reward=reward.astype(jnp.float32))
        info = {"regret": pull_regret(params, action)}
        return self.get_obs(new_state, params), new_state, new_state.last_reward, jnp.array(False), info

    def get_obs(self, state: BanditState, params: BanditParams, key: jax.Array | None = None) -> jax.Array:
        # one_hot(-1) is all zeros: no action yet
        action = jax.nn.one_hot(state.last_action, self.num_arms, dtype=jnp.float32)
        progress = state.time.astype(jnp.float32) / jnp.asarray(params.max_steps_in_episode, jnp.float32)
        return jnp.concatenate([action, state.last_reward[None], progress[None]]).astype(jnp.float32)


def _make_bandit(
    kind: str,
    num_arms: int = 5,
    arm_distribution: str = "uniform",
    good_mean: float = 0.9,
    bad_mean: float = 0.1,
):
    env = Bandit(num_arms, kind, arm_distribution, good_mean, bad_mean)
    return env, env.default_params


for _kind in KINDS:
    register(f"bandit-{_kind}", functools.partial(_make_bandit, _kind))
