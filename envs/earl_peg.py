"""EARL's ``sawyer_peg`` on the suite's kinematic Sawyer world (``earl-peg-kin``): approximate, not MuJoCo.

EARL's task (``earl_benchmark/envs/sawyer_peg.py``, a ``SawyerPegV2`` on Meta-World's
``sawyer_peg_insertion_side.xml``; checked against architsharma97/earl_benchmark, the code here is our
own) is peg-insert-side with a fixed box: pick the peg up off the table and push its head into the
box's side hole; reset-free, the backward task pulls it out and puts it back where it started.

* **World.** The arm, gripper, peg and box are those of :mod:`envs.manipulation` (the state *is* a
  :class:`~envs.manipulation.world.ManipState` plus ``goal``): :func:`world.move_arm` (mocap + lagged
  hand, gripper closure), then peg-insert-side's object rule
  (:meth:`~envs.manipulation.tasks.pegs.PegInsertSide.move_objects`: grasp-attach at the peg's grasp
  point, carry, push, fall; the box is an obstacle for the fingers and for the peg everywhere but its
  side tunnel). Pulling the peg back out is the same rule run the other way (the tunnel lets the held
  peg slide along x only); peg-unplug-side's socket rule (a plug that slides only along +x until it is
  out) is not needed: the peg in the tunnel is a free object that the box walls confine.
* **Box.** Fixed at :data:`BOX` = (-0.3, 0.6, 0), EARL's ``goal_states[0][4:] - (0.03, 0, 0.13)``; the
  hole's target (peg-insert-side's ``box + (0.03, 0, 0.13)``) is then EARL's goal peg (-0.27, 0.6, 0.13).
* **Peg.** ``state.obj`` is peg-insert-side's ``pegGrasp`` point; the observed peg is EARL's ``pegHead``
  site, :func:`peg_head` = ``obj + pegs.PEG_HEAD`` (the bar's centre - (0.1, 0, 0)).
* **rho_0.** Hand at :data:`HAND_INIT` = (0, 0.6, 0.2) (EARL's ``hand_init_pos``) at rest, gripper
  open, the peg lying on the table with its head at one of :data:`EARL_START_HEADS` (uniform): the
  peg-head xy of EARL's 15 saved ``initial_states`` (``num_initial_state_samples = 15``), at the resting
  head height :data:`START_HEAD_Z` = 0.015.
* **Observation** (float32, 14) ``[hand xyz, gripper opening, peg head xyz, goal (7)]``, EARL's layout;
  the hand is the family's hand point (TCP = hand + (0, 0, -0.045)), the opening the family's (1 open,
  0.29 closed on nothing; EARL's normalised finger distance is 1 open).
* **Goal** (float32, 7) ``[hand xyz, gripper, peg head xyz]``, EARL's layout (``goal[4:7]`` is the peg
  target). Forward goal (:meth:`SawyerPegKin.forward_goal`, one goal): EARL's ``goal_states[0]`` =
  :data:`EARL_GOAL_STATE` = (0, 0.6, 0.2, 1, -0.27, 0.6, 0.13). Backward goal
  (:meth:`SawyerPegKin.start_goal`) of a state: its own ``[hand, opening, peg head]`` (after an
  intervention: EARL's ``initial_states[i]`` layout, the peg at its drawn start).
* **Success** = sparse reward: ``||peg head - goal[4:7]|| <= 0.05`` (EARL's ``is_successful`` and
  ``TARGET_RADIUS``; unscaled, unlike peg-insert-side's (1, 2, 2)-scaled 0.07). Horizon
  ``max_steps_in_episode`` = 200 (EARL's H_E, RISC's peg phase limit); EARL's H_T for the train env is 1e5.

Not EARL: kinematic contacts instead of MuJoCo (the peg never tilts or slips; a released peg falls
straight down and rests on whatever it would hit, so a peg released in the hole stays in it); EARL's
*env* draws the peg's start uniformly over Meta-World's object range (``random_init``) and saves the 15
samples for its algorithms, here rho_0 is uniform over those 15 (the ``num_initial_state_samples``
reading); EARL's saved starts have the head at z = 0.02 (the pre-settle value), here it rests at
0.015; the observed hand is the family's hand point, not MuJoCo's ``tcp_center`` (EARL's start obs
(0.0062, 0.6002, 0.1943) reads (0, 0.6, 0.2) here); the reset-at-goal and wide-init options, EARL's
dense reward and the 8 cm ``info`` grasp flags are not ported. EARL's train env never ends an episode;
here episodes end on success or H_E (gymnax's ``step``), and :class:`~envs.reset_free.ResetFree`
ignores both. A peg pushed beyond the hand's reach stays there (no ``irreversible`` states, as EARL).

The hand moves one axis at a time and a step that would push the held peg into the box (or the table)
is refused whole (the family's ``slide_hand``), so a misaligned peg stops up to ~2.5 cm short of the box's
face, and lowering a held peg onto the table needs a release a little above it.

Solvable reset-free: ``tests/test_earl_peg.py`` scripts both directions from observations alone (reach,
grasp, lift, line up, insert, release: first success after 84-102 steps from the 15 starts; re-grasp,
pull out, carry back, lower, release: 79-92 steps), inside the 200-step horizon.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import StaticIdentity, spaces
from envs.manipulation import world
from envs.manipulation.tasks import pegs
from envs.manipulation.world import ManipState
from envs.registry import register
from envs.reset_free import GoalEnv

HAND_INIT = (0.0, 0.6, 0.2)  # EARL's hand_init_pos
EARL_GOAL_STATE = (0.0, 0.6, 0.2, 1.0, -0.27, 0.6, 0.13)  # EARL's goal_states[0]: [hand, gripper, peg head]
BOX = (-0.3, 0.6, 0.0)  # EARL's box body: goal peg head - peg-insert-side's target offset (0.03, 0, 0.13)
# peg-head xy of EARL's 15 saved initial_states (obs[4:6]; their hand is hand_init, their gripper 1.0)
EARL_START_HEADS = (
    (0.00313463, 0.68326396), (-0.04035005, 0.67949003), (0.02531051, 0.6074387), (0.05957219, 0.6271171),
    (-0.07566337, 0.62575287), (-0.01177235, 0.55206996), (0.02779735, 0.54707706), (0.01835314, 0.5329686),
    (0.02690855, 0.6263067), (0.01766127, 0.59630984), (0.0560186, 0.6634998), (-0.03950658, 0.6323736),
    (-0.03216827, 0.5247563), (0.01265727, 0.69466716), (0.05076993, 0.6025737),
)
START_HEAD_Z = pegs.PEG_REST_Z + pegs.PEG_HEAD[2]  # 0.015: the head of a peg lying on the table
SUCCESS_DISTANCE = 0.05  # EARL's TARGET_RADIUS: ||peg head - goal peg head|| <= 0.05
HORIZON = 200  # EARL's eval horizon H_E (RISC's peg phase limit)
TRAIN_HORIZON = 100_000  # EARL's H_T for the deployed-evaluation setting (for ResetFree)
OBS_SIZE = 14
GOAL_SIZE = 7
ACTION_SIZE = 4
PEG_BOUND = 2.0  # observation box for peg entries (the family's OBJECT_BOUND)

_INSERT_SIDE = pegs.PegInsertSide()


class _BoxParams(NamedTuple):
    """What peg-insert-side's object rule reads from its task params: the box position."""

    goal: tuple


_RULE_PARAMS = _BoxParams(goal=BOX)


def peg_head(obj) -> jax.Array:
    """The observed peg head (EARL's ``pegHead`` site) of a peg whose grasp point is ``obj``."""
    return jnp.asarray(obj, jnp.float32) + jnp.asarray(pegs.PEG_HEAD, jnp.float32)


def grasp_point(head) -> jax.Array:
    """The peg's grasp point (``state.obj``) whose head is ``head`` (inverse of :func:`peg_head`)."""
    return jnp.asarray(head, jnp.float32) - jnp.asarray(pegs.PEG_HEAD, jnp.float32)


def start_heads() -> jax.Array:
    """rho_0's 15 peg-head positions (float32 [15, 3]), resting on the table."""
    xy = jnp.asarray(EARL_START_HEADS, jnp.float32)
    return jnp.concatenate([xy, jnp.full((len(EARL_START_HEADS), 1), START_HEAD_Z, jnp.float32)], axis=1)


def start_grasp_points() -> jax.Array:
    """rho_0's 15 peg grasp points (``state.obj``, float32 [15, 3]): :func:`start_heads` resting at exactly
    peg-insert-side's ``PEG_REST_Z``, so an untouched peg does not move."""
    return grasp_point(start_heads()).at[:, 2].set(pegs.PEG_REST_Z)


@struct.dataclass
class SawyerPegKinParams:
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class SawyerPegKinState(ManipState):
    """The family's arm and peg state (``obj`` = the peg's grasp point) plus the goal.

    ``obj2``, ``q``, ``q2``, ``prev_frame`` and ``succeeded`` are unused and stay at their reset values.
    """

    goal: jax.Array  # float32 [7]: [hand xyz, gripper, peg head xyz]


class SawyerPegKin(StaticIdentity, GoalEnv):
    """EARL's sawyer_peg (insert the peg; pull it out and put it back backward) as a :class:`~envs.reset_free.GoalEnv`."""

    goal_obs_size = GOAL_SIZE  # the goal vector closes the observation

    def _static(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return "SawyerPegKin()"

    @property
    def name(self) -> str:
        return "earl-peg-kin"

    @property
    def default_params(self) -> SawyerPegKinParams:
        return SawyerPegKinParams(max_steps_in_episode=jnp.asarray(HORIZON, jnp.int32))

    def action_space(self, params: SawyerPegKinParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (ACTION_SIZE,), jnp.float32)

    def observation_space(self, params: SawyerPegKinParams | None = None) -> spaces.Box:
        part_low = np.concatenate([world.OBS_HAND_LOW, [-1.0], np.full(3, -PEG_BOUND)])
        part_high = np.concatenate([world.OBS_HAND_HIGH, [1.0], np.full(3, PEG_BOUND)])
        low = jnp.asarray(np.tile(part_low, 2), jnp.float32)
        high = jnp.asarray(np.tile(part_high, 2), jnp.float32)
        return spaces.Box(low, high, (OBS_SIZE,), jnp.float32)

    # --- goals ------------------------------------------------------------------------
    def forward_goal(self, key: jax.Array, params: SawyerPegKinParams) -> jax.Array:
        return jnp.asarray(EARL_GOAL_STATE, jnp.float32)

    def start_goal(self, state: SawyerPegKinState, params: SawyerPegKinParams) -> jax.Array:
        return self._configuration(state)

    def is_success(self, state: SawyerPegKinState, params: SawyerPegKinParams) -> jax.Array:
        return jnp.linalg.norm(peg_head(state.obj) - state.goal[4:7]) <= SUCCESS_DISTANCE

    # --- dynamics -----------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: SawyerPegKinParams):
        key_start, key_goal = jax.random.split(key)
        index = jax.random.randint(key_start, (), 0, len(EARL_START_HEADS))
        manip = world.initial_state(HAND_INIT, start_grasp_points()[index])
        fields = {f.name: getattr(manip, f.name) for f in dataclasses.fields(manip)}
        state = SawyerPegKinState(**fields, goal=self.forward_goal(key_goal, params))
        return self.get_obs(state, params), state

    def transition(self, key: jax.Array, state: SawyerPegKinState, action, params: SawyerPegKinParams):
        action = jnp.asarray(action, jnp.float32)
        if action.shape != (ACTION_SIZE,):
            raise ValueError(f"{self.name}: action must have shape ({ACTION_SIZE},), got {tuple(action.shape)}")
        action = jnp.clip(action, -1.0, 1.0)
        moved = world.move_arm(state, action)
        new = _INSERT_SIDE.move_objects(state, moved, action, _RULE_PARAMS)  # grasp, carry, box, push, fall
        return new.replace(time=state.time + 1)

    def get_obs(self, state: SawyerPegKinState, params: SawyerPegKinParams | None = None, key=None) -> jax.Array:
        return jnp.concatenate([self._configuration(state), state.goal]).astype(jnp.float32)

    # --- helpers --------------------------------------------------------------------------
    def head(self, state: SawyerPegKinState) -> jax.Array:
        """The observed peg head (float32 [3])."""
        return peg_head(state.obj)

    def _configuration(self, state: SawyerPegKinState) -> jax.Array:
        """``[hand xyz, gripper opening, peg head xyz]``: the first 7 observation entries (a goal vector)."""
        opening = world.opening_of(state.closure)
        return jnp.concatenate([state.hand, opening[None], peg_head(state.obj)]).astype(jnp.float32)


def make_earl_peg() -> tuple[SawyerPegKin, SawyerPegKinParams]:
    env = SawyerPegKin()
    return env, env.default_params


register("earl-peg-kin", make_earl_peg)

__all__ = [
    "BOX",
    "EARL_GOAL_STATE",
    "EARL_START_HEADS",
    "HAND_INIT",
    "SawyerPegKin",
    "SawyerPegKinParams",
    "SawyerPegKinState",
    "grasp_point",
    "make_earl_peg",
    "peg_head",
    "start_grasp_points",
    "start_heads",
]
