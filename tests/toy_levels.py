"""A two-field toy level (one float, one int) shared by the level-buffer teacher tests."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.task_space import Field, TaskSpace


@struct.dataclass
class Level:
    x: jax.Array
    n: jax.Array


def level_space() -> TaskSpace:
    return TaskSpace(Level(np.float32(0), np.int32(0)), (Field("x", 0.0, 1.0), Field("n", 0, 9, kind="int")))


def lvl(x, n=0):
    return Level(jnp.float32(x), jnp.int32(n))


def levels(xs):
    return Level(jnp.asarray(xs, jnp.float32), jnp.zeros(len(xs), jnp.int32))
