"""Registry: names, overrides (params fields and constructor keywords), error messages."""

import jax.numpy as jnp
import gymnax
import pytest
from flax import struct

import envs
from envs import Environment, Field, TaskSpace
from envs import registry
from envs.core import spaces


@struct.dataclass
class ToyParams:
    max_steps_in_episode: int = 10
    speed: float = 1.0
    doubled: float = 2.0  # derived: 2 * speed
    goal: object = None  # array of length ``size``, set by the env


class SizedEnv(Environment):
    """A toy env whose params shape depends on a constructor keyword."""

    def __init__(self, size: int = 3):
        super().__init__()
        self.size = size

    @property
    def default_params(self) -> ToyParams:
        return ToyParams(goal=jnp.zeros(self.size, jnp.float32))

    @property
    def task_space(self) -> TaskSpace:
        return TaskSpace(
            self.default_params,
            (Field("speed", 0.5, 2.0),),
            derive=lambda p: p.replace(doubled=2 * p.speed),
            name="sized",
        )

    def observation_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self.size,))

    def action_space(self, params=None):
        return spaces.Discrete(2)


def sized_factory(size: int = 3):
    env = SizedEnv(size)
    return env, env.default_params


@pytest.fixture
def toy_registered(monkeypatch):
    # registered only for the duration of a test, so generic env tests never see it
    monkeypatch.setitem(registry._REGISTRY, "toy-sized", sized_factory)
    return "toy-sized"


def test_every_gymnax_env_is_registered():
    names = envs.registered()
    assert names == sorted(names)
    for g in gymnax.registered_envs:
        assert g in names


def test_make_returns_env_and_default_params():
    env, params = envs.make("CartPole-v1")
    assert params == env.default_params
    assert isinstance(env, Environment)
    assert env.task_space.names == ("gravity", "masscart", "masspole", "length", "force_mag")


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="unknown environment 'Cartpole-v1'.*CartPole-v1"):
        envs.make("Cartpole-v1")
    with pytest.raises(ValueError, match="Breakout-MinAtar"):
        envs.make("Breakout-Minatar")


def test_bad_override_names_it_and_the_close_match():
    with pytest.raises(ValueError, match="'gravty'.*did you mean gravity"):
        envs.make("CartPole-v1", gravty=3.0)
    with pytest.raises(ValueError) as err:
        envs.make("Pendulum-v1", mass=2.0)
    msg = str(err.value)
    assert "'mass'" in msg and "Pendulum-v1" in msg and "max_speed" in msg  # valid names listed


def test_field_override_and_derived_fields():
    _, params = envs.make("CartPole-v1", gravity=5.0, masscart=2.0, max_steps_in_episode=50.0)
    assert float(params.gravity) == 5.0
    assert params.max_steps_in_episode == 50 and isinstance(params.max_steps_in_episode, int)
    # total_mass is derived from masscart + masspole by the CartPole task space
    assert float(params.total_mass) == pytest.approx(2.1)


def test_override_shape_and_int_validation():
    with pytest.raises(ValueError, match="gravity.*shape"):
        envs.make("CartPole-v1", gravity=[1.0, 2.0])
    with pytest.raises(ValueError, match="max_steps_in_episode.*integer"):
        envs.make("CartPole-v1", max_steps_in_episode=2.5)
    with pytest.raises(ValueError, match="available_torque.*shape"):
        envs.make("Acrobot-v1", available_torque=[-1.0, 1.0])
    _, params = envs.make("Acrobot-v1", available_torque=[-2.0, 0.0, 2.0])
    assert params.available_torque.dtype == jnp.float32
    assert params.available_torque.tolist() == [-2.0, 0.0, 2.0]


def test_constructor_keyword_override(toy_registered):
    env, params = envs.make(toy_registered, size=5)
    assert env.size == 5 and params.goal.shape == (5,)
    env, params = envs.make(toy_registered, size=4, speed=1.5, goal=[1.0, 2.0, 3.0, 4.0])
    assert params.goal.shape == (4,) and float(params.speed) == 1.5
    assert float(params.doubled) == 3.0  # derive applied after the override
    with pytest.raises(ValueError, match="goal.*shape"):
        envs.make(toy_registered, size=4, goal=[1.0, 2.0])
    with pytest.raises(ValueError, match="'sise'.*did you mean size"):
        envs.make(toy_registered, sise=4)


def test_register_refuses_duplicates(toy_registered):
    with pytest.raises(ValueError, match="already registered"):
        envs.register(toy_registered, sized_factory)
    envs.register(toy_registered, sized_factory, overwrite=True)
