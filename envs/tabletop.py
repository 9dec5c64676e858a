"""EARL's ``tabletop_manipulation`` in JAX (a kinematic port; MuJoCo was only a state container).

Checked against ``earl_benchmark/envs/tabletop_manipulation.py`` and
``earl_benchmark/__init__.py`` (architsharma97/earl_benchmark); the code here is our own.

* Action: 3 floats clipped to [-1, 1] and mapped affinely onto [-0.2, 0.2]
  (``-0.2 + (a + 1) * 0.5 * 0.4``, EARL's formula, i.e. ``0.2 * a``).
* Grasp, decided at the gripper's position *before* the move: ``a[2] > 0`` keeps a held
  mug, or grasps a free one whose distance to the gripper is strictly below 0.4 (EARL:
  ``dist < threshold``); ``a[2] <= 0`` releases.
* Move: gripper xy += ``a[:2]``, clipped to [-2.8, 2.8]; a held mug moves by the
  gripper's actual (clipped) displacement and is then clipped to [-2.8, 2.8] itself.
* Observation (float32, 12): ``[gripper xy, mug xy, attached pair, goal (6)]``; the
  attached pair is ``(-1, -1)`` when nothing is held and ``(0, 0)`` (the mug's
  ``(color, object)`` key) when the mug is held.
* Goal (float32, 6) ``[gripper xy, mug xy, -1, -1]``, as EARL's goal vectors. Start
  (rho_0, one state): gripper (0, 0), mug (2.5, 0), not held. Forward goals, drawn
  uniformly: the mug at (-2.5, -1), (-2.5, 1), (0, 2) or (0, -2) with the gripper at
  (0, 0) (:data:`GOALS`). The backward goal (:meth:`Tabletop.start_goal`) of a state is
  ``[its gripper xy, its mug xy, -1, -1]``; after an intervention that is EARL's
  ``initial_states[0]`` = (0, 0, 2.5, 0, -1, -1).
* Sparse reward = success = ``||obs[0:4] - goal[0:4]|| <= 0.2`` (EARL's ``sparse``
  reward type, the one ``EARLEnvs`` uses by default); the attached pair is not compared.
* Horizon ``max_steps_in_episode`` = 200 (EARL's deployed-evaluation H_E).

Not bit-for-bit: EARL keeps positions in MuJoCo's float64 ``qpos`` and casts only the
observation to float32; here the state is float32, so positions can differ in the last
float32 bits after many steps (and a success test within ~1e-6 of the 0.2 boundary could
flip). Full moves (|a| = 1) are exactly +-0.2 in both. EARL's train env ignores
``done`` (always False); episode ends here are gymnax's (success or H_E) and
:class:`~envs.reset_free.ResetFree` ignores them. EARL's dense reward and
``reset_at_goal`` option are not ported.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import EnvState, StaticIdentity, spaces
from envs.registry import register
from envs.reset_free import GoalEnv

BOUND = 2.8  # positions are clipped to [-BOUND, BOUND]
MOVE = 0.2  # largest move per step and axis
GRASP_DISTANCE = 0.4  # a mug strictly closer than this can be grasped
SUCCESS_DISTANCE = 0.2  # success: ||(gripper, mug) - goal[:4]|| <= this
HORIZON = 200
NOT_HELD = (-1.0, -1.0)
HELD = (0.0, 0.0)

INITIAL_STATE = np.array([0.0, 0.0, 2.5, 0.0, -1.0, -1.0], np.float32)
GOALS = np.array(
    [
        [0.0, 0.0, -2.5, -1.0, -1.0, -1.0],
        [0.0, 0.0, -2.5, 1.0, -1.0, -1.0],
        [0.0, 0.0, 0.0, 2.0, -1.0, -1.0],
        [0.0, 0.0, 0.0, -2.0, -1.0, -1.0],
    ],
    np.float32,
)
OBS_SIZE = 12
ACTION_SIZE = 3


@struct.dataclass
class TabletopParams:
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class TabletopState(EnvState):
    gripper: jax.Array  # float32 [2]
    mug: jax.Array  # float32 [2]
    attached: jax.Array  # bool: the mug is held
    goal: jax.Array  # float32 [6]


class Tabletop(StaticIdentity, GoalEnv):
    """EARL's tabletop manipulation as a :class:`~envs.reset_free.GoalEnv` (see module docstring)."""

    def _static(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return "Tabletop()"

    @property
    def name(self) -> str:
        return "earl-tabletop"

    @property
    def default_params(self) -> TabletopParams:
        return TabletopParams(max_steps_in_episode=jnp.asarray(HORIZON, jnp.int32))

    def action_space(self, params: TabletopParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (ACTION_SIZE,), jnp.float32)

    def observation_space(self, params: TabletopParams | None = None) -> spaces.Box:
        return spaces.Box(-BOUND, BOUND, (OBS_SIZE,), jnp.float32)

    # --- goals ------------------------------------------------------------------------
    def forward_goal(self, key: jax.Array, params: TabletopParams) -> jax.Array:
        return jnp.asarray(GOALS)[jax.random.randint(key, (), 0, GOALS.shape[0])]

    def start_goal(self, state: TabletopState, params: TabletopParams) -> jax.Array:
        return jnp.concatenate([state.gripper, state.mug, jnp.asarray(NOT_HELD, jnp.float32)])

    def is_success(self, state: TabletopState, params: TabletopParams) -> jax.Array:
        return jnp.linalg.norm(jnp.concatenate([state.gripper, state.mug]) - state.goal[:4]) <= SUCCESS_DISTANCE

    # --- dynamics -----------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: TabletopParams):
        state = TabletopState(
            time=jnp.zeros((), jnp.int32),
            gripper=jnp.asarray(INITIAL_STATE[0:2]),
            mug=jnp.asarray(INITIAL_STATE[2:4]),
            attached=jnp.asarray(False),
            goal=self.forward_goal(key, params),
        )
        return self.get_obs(state, params), state

    def transition(self, key: jax.Array, state: TabletopState, action, params: TabletopParams):
        a = jnp.clip(jnp.asarray(action, jnp.float32).reshape(ACTION_SIZE), -1.0, 1.0)
        low, high = jnp.float32(-MOVE), jnp.float32(MOVE)
        a = low + (a + 1.0) * 0.5 * (high - low)  # EARL's rescaling, in its order of operations
        near = jnp.linalg.norm(state.gripper - state.mug) < GRASP_DISTANCE
        attached = (a[2] > 0) & (state.attached | near)
        gripper = jnp.clip(state.gripper + a[:2], -BOUND, BOUND)
        carried = jnp.clip(state.mug + (gripper - state.gripper), -BOUND, BOUND)
        mug = jnp.where(attached, carried, state.mug)
        return state.replace(time=state.time + 1, gripper=gripper, mug=mug, attached=attached)

    goal_obs_size = 6  # the goal vector closes the observation
    demo_steps = 80  # a scripted demonstration reaches any goal within this many steps

    def scripted_action(self, obs: jax.Array) -> jax.Array:
        """A demonstrator for the goal in ``obs`` (forward or backward): fetch the mug, carry it to the goal's
        mug position, release it there, then bring the gripper to the goal's gripper position."""
        grip, mug, goal_grip, goal_mug = obs[0:2], obs[2:4], obs[6:8], obs[8:10]
        held = obs[4] == HELD[0]
        placed = jnp.linalg.norm(mug - goal_mug) <= 0.05
        # grasp only once on top of the mug: a mug held off-centre could not reach a goal near the wall
        on_top = jnp.linalg.norm(grip - mug) < 0.15
        carry = held | on_top
        toward = jnp.where(placed, goal_grip - grip, jnp.where(carry, goal_mug - mug, mug - grip))
        grasp = jnp.where(placed, -1.0, jnp.where(carry, 1.0, -1.0))
        return jnp.concatenate([jnp.clip(toward / MOVE, -1.0, 1.0), grasp[None]]).astype(jnp.float32)

    def get_obs(self, state: TabletopState, params: TabletopParams | None = None, key=None) -> jax.Array:
        pair = jnp.where(state.attached, jnp.asarray(HELD, jnp.float32), jnp.asarray(NOT_HELD, jnp.float32))
        return jnp.concatenate([state.gripper, state.mug, pair, state.goal]).astype(jnp.float32)


def make_tabletop() -> tuple[Tabletop, TabletopParams]:
    env = Tabletop()
    return env, env.default_params


register("earl-tabletop", make_tabletop)

__all__ = [
    "GOALS",
    "INITIAL_STATE",
    "Tabletop",
    "TabletopParams",
    "TabletopState",
    "make_tabletop",
]
