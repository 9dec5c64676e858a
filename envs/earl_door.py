"""EARL's ``sawyer_door`` on the suite's kinematic Sawyer world (``earl-door-kin``): approximate, not MuJoCo.

EARL's task (``earl_benchmark/envs/sawyer_door.py``, a ``SawyerDoorCloseEnvV2``; checked against
architsharma97/earl_benchmark, the code here is our own) is door *closing*: the door starts open
and the forward goal is the shut door; reset-free, the backward task reopens it to where it was.

* **World.** The arm, gripper and door are those of :mod:`envs.manipulation` (the state *is* a
  :class:`~envs.manipulation.world.ManipState` plus ``goal``): :func:`world.move_arm` (mocap +
  lagged hand, gripper closure), then door-open/door-close's hinge rule
  :func:`~envs.manipulation.tasks.doors_drawers.move_door` (the *hook* contact behind the handle
  bar drives the door both ways, the panel's faces only push; the TCP is kept out of the safe).
* **Door.** The safe's body at EARL's ``obj_init_pos`` :data:`DOOR_BODY` = (0.1, 0.95, 0.1), so
  the hinge (body + (-0.185, -0.1, 0)) is EARL's at (-0.085, 0.85, 0.1).
* **Angle convention.** ``state.q`` is EARL's ``doorjoint`` angle unchanged: a hinge about +z,
  0 = shut, negative = open, swinging toward the robot (-y); the suite's range
  ``DOOR_LOW..DOOR_HIGH`` = [-2, 0]. rho_0: ``q = -pi/3 + U(0, pi/20)`` in [-1.047, -0.890]
  (EARL's ``obj_init_angle`` plus its reset noise), hand at :data:`HAND_INIT` = (0, 0.4, 0.2)
  (EARL's ``hand_init_pos``, also the suite's fixture tasks' hand_init) at rest, gripper open.
* **Observed handle.** EARL's observed handle (the ``handle`` geom's MuJoCo frame) is not the
  geom's XML ``pos`` (0.325, -0.062, 0), which the manipulation family observes: MuJoCo moves a
  mesh geom's frame to the mesh's centre (our reading; the numbers fit it). Here it is the
  door_link point :data:`HANDLE_OBS` = (0.37572, -0.10714, 0.00004), recovered from EARL's two
  published states (shut: (0.29072, 0.74286, 0.10004); at -pi/3: (0.01007, 0.47105, 0.10004)),
  which it reproduces within 1e-7 (float32). The contacts (hook, panel) are the family's, unchanged.
* **Observation** (float32, 14) ``[hand xyz, gripper opening, handle xyz, goal (7)]``; the hand is
  the family's hand point (TCP = hand + (0, 0, -0.045)), the opening the family's (1 open, 0.29
  closed on nothing; EARL's normalised finger distance is 1 open).
* **Goal** (float32, 7) ``[hand xyz, gripper, handle xyz]``, EARL's layout (``goal[3]`` is the
  gripper, ``goal[4:7]`` the handle target). Forward goal (:meth:`SawyerDoorKin.forward_goal`,
  one goal): EARL's ``goal_states[0]`` = ``[shut handle, 1.0, shut handle]`` (EARL puts the hand
  goal on the shut handle). Backward goal (:meth:`SawyerDoorKin.start_goal`) of a state: its own
  ``[hand, opening, handle]`` (after an intervention: EARL's ``initial_states[0]`` layout, the
  door at its drawn start angle).
* **Success** = sparse reward: ``||handle - goal[4:7]|| <= 0.02`` (EARL's ``is_successful``; its
  ``info["success"]`` uses 0.08, not ported). Horizon ``max_steps_in_episode`` = 300 (EARL's H_E
  and RISC's door phase limit); EARL's H_T for the train env is 2e5.

Not EARL: kinematic contacts instead of MuJoCo (no door inertia or damping: the door moves only
while the fingers drive it, and stays put otherwise); EARL's asset limits the hinge to
[-1.4, 0], the family's rule to [-2, 0], so the door can be opened further here; the
observed hand is the family's hand point, not MuJoCo's ``tcp_center`` (EARL's start obs
(0.0059, 0.3997, 0.1949) reads (0, 0.4, 0.2) here); the reset-at-goal option and EARL's dense
reward are not ported. EARL's train env never ends an episode; here episodes end on success or
H_E (gymnax's ``step``), and :class:`~envs.reset_free.ResetFree` ignores both.

Solvable reset-free: ``tests/test_earl_door.py`` scripts both directions from observations alone
(push the panel shut: ~45 steps from rho_0; hook behind the handle and pull it back to the start
angle: ~100 steps from the shut door), well inside the 300-step horizon.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.core import StaticIdentity, spaces
from envs.manipulation import world
from envs.manipulation.tasks import doors_drawers as dd
from envs.manipulation.world import ManipState
from envs.registry import register
from envs.reset_free import GoalEnv

DOOR_BODY = (0.1, 0.95, 0.1)  # EARL's obj_init_pos (the safe's body)
HINGE = tuple(b + h for b, h in zip(DOOR_BODY, dd.DOOR_HINGE))  # (-0.085, 0.85, 0.1)
HANDLE_OBS = (0.37572163, -0.10713991, 0.00003595)  # EARL's observed handle in door_link (see docstring)
HAND_INIT = (0.0, 0.4, 0.2)  # EARL's hand_init_pos
START_ANGLE = -math.pi / 3  # EARL's obj_init_angle; rho_0 adds U(0, START_NOISE)
START_NOISE = math.pi / 20
CLOSED_ANGLE = 0.0  # the forward goal's angle (dd.DOOR_HIGH: the door shut)
GOAL_GRIPPER = 1.0  # EARL's goal gripper entry (open)
SUCCESS_DISTANCE = 0.02  # EARL's is_successful: ||handle - goal handle|| <= 0.02
HORIZON = 300  # EARL's eval horizon H_E (RISC's door phase limit)
TRAIN_HORIZON = 200_000  # EARL's H_T for the deployed-evaluation setting (for ResetFree)
# EARL's published states (float64): obs[:7] at rho_0 without noise, and the goal vector
EARL_INITIAL_STATE = (0.00591636, 0.39968333, 0.19493164, 1.0, 0.01007495, 0.47104556, 0.10003595)
EARL_GOAL_STATE = (0.29072163, 0.74286009, 0.10003595, 1.0, 0.29072163, 0.74286009, 0.10003595)
OBS_SIZE = 14
GOAL_SIZE = 7
ACTION_SIZE = 4
HANDLE_BOUND = 2.0  # observation box for handle entries (the family's OBJECT_BOUND)


def handle_of_angle(q) -> jax.Array:
    """The observed handle (float32 [3]) with the door at angle ``q``."""
    local = jnp.asarray(HANDLE_OBS, jnp.float32)
    return jnp.asarray(HINGE, jnp.float32) + world.rotate_z(local, jnp.asarray(q, jnp.float32))


def angle_of_handle(handle) -> jax.Array:
    """The door angle whose observed handle is ``handle`` (inverse of :func:`handle_of_angle` in the xy plane)."""
    rel = jnp.asarray(handle, jnp.float32)[..., :2] - jnp.asarray(HINGE[:2], jnp.float32)
    return jnp.arctan2(rel[..., 1], rel[..., 0]) - math.atan2(HANDLE_OBS[1], HANDLE_OBS[0])


@struct.dataclass
class SawyerDoorKinParams:
    max_steps_in_episode: jax.Array  # int32 []


@struct.dataclass
class SawyerDoorKinState(ManipState):
    """The family's arm and door state (``obj`` = the safe's body, ``q`` = the door angle) plus the goal.

    The free-object fields of ``ManipState`` (``obj2``, ``q2``, ``grasped``, ``grip_offset``,
    ``prev_frame``, ``succeeded``) are unused and stay at their reset values.
    """

    goal: jax.Array  # float32 [7]: [hand xyz, gripper, handle xyz]


class SawyerDoorKin(StaticIdentity, GoalEnv):
    """EARL's sawyer_door (close the door; reopen it backward) as a :class:`~envs.reset_free.GoalEnv`."""

    def _static(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return "SawyerDoorKin()"

    @property
    def name(self) -> str:
        return "earl-door-kin"

    @property
    def default_params(self) -> SawyerDoorKinParams:
        return SawyerDoorKinParams(max_steps_in_episode=jnp.asarray(HORIZON, jnp.int32))

    def action_space(self, params: SawyerDoorKinParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (ACTION_SIZE,), jnp.float32)

    def observation_space(self, params: SawyerDoorKinParams | None = None) -> spaces.Box:
        part_low = np.concatenate([world.OBS_HAND_LOW, [-1.0], np.full(3, -HANDLE_BOUND)])
        part_high = np.concatenate([world.OBS_HAND_HIGH, [1.0], np.full(3, HANDLE_BOUND)])
        low = jnp.asarray(np.tile(part_low, 2), jnp.float32)
        high = jnp.asarray(np.tile(part_high, 2), jnp.float32)
        return spaces.Box(low, high, (OBS_SIZE,), jnp.float32)

    # --- goals ------------------------------------------------------------------------
    def forward_goal(self, key: jax.Array, params: SawyerDoorKinParams) -> jax.Array:
        shut = handle_of_angle(CLOSED_ANGLE)
        return jnp.concatenate([shut, jnp.asarray([GOAL_GRIPPER], jnp.float32), shut])

    def start_goal(self, state: SawyerDoorKinState, params: SawyerDoorKinParams) -> jax.Array:
        return self._configuration(state)

    def is_success(self, state: SawyerDoorKinState, params: SawyerDoorKinParams) -> jax.Array:
        return jnp.linalg.norm(self.handle(state) - state.goal[4:7]) <= SUCCESS_DISTANCE

    # --- dynamics -----------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: SawyerDoorKinParams):
        key_angle, key_goal = jax.random.split(key)
        q = START_ANGLE + jax.random.uniform(key_angle, (), jnp.float32, 0.0, START_NOISE)
        manip = world.initial_state(HAND_INIT, DOOR_BODY, q=q)
        fields = {f.name: getattr(manip, f.name) for f in dataclasses.fields(manip)}
        state = SawyerDoorKinState(**fields, goal=self.forward_goal(key_goal, params))
        return self.get_obs(state, params), state

    def transition(self, key: jax.Array, state: SawyerDoorKinState, action, params: SawyerDoorKinParams):
        action = jnp.asarray(action, jnp.float32)
        if action.shape != (ACTION_SIZE,):
            raise ValueError(f"{self.name}: action must have shape ({ACTION_SIZE},), got {tuple(action.shape)}")
        moved = world.move_arm(state, action)  # clips the action to [-1, 1]
        new = dd.move_door(state, moved)
        return new.replace(time=state.time + 1)

    goal_obs_size = 7  # the goal vector closes the observation
    demo_steps = 150  # the scripted demonstrator closes the door in ~45 steps and reopens it in ~100

    def scripted_action(self, obs: jax.Array) -> jax.Array:
        """A demonstrator for the goal in ``obs``: push the door shut when the goal's angle is beyond the
        door's, else hook the handle and pull it open to the goal's angle (:func:`close_door`, :func:`reopen_door`)."""
        shut_more = angle_of_handle(obs[11:14]) > angle_of_handle(obs[4:7])
        return jnp.where(shut_more, close_door(obs), reopen_door(obs))

    def get_obs(self, state: SawyerDoorKinState, params: SawyerDoorKinParams | None = None, key=None) -> jax.Array:
        return jnp.concatenate([self._configuration(state), state.goal]).astype(jnp.float32)

    # --- helpers --------------------------------------------------------------------------
    def handle(self, state: SawyerDoorKinState) -> jax.Array:
        """The observed handle position (float32 [3])."""
        return handle_of_angle(state.q)

    def _configuration(self, state: SawyerDoorKinState) -> jax.Array:
        """``[hand xyz, gripper opening, handle xyz]``: the first 7 observation entries (a goal vector)."""
        opening = world.opening_of(state.closure)
        return jnp.concatenate([state.hand, opening[None], self.handle(state)]).astype(jnp.float32)


# --- scripted controllers (they read only the observation; demonstrations and tests) ----------------
def _go(obs: jax.Array, tcp_target: jax.Array) -> jax.Array:
    """P-controller moving the TCP to ``tcp_target``, fingers open."""
    offset = jnp.asarray(world.TCP_OFFSET, jnp.float32)
    move = jnp.clip(25.0 * (tcp_target - offset - obs[0:3]), -1.0, 1.0)
    return jnp.concatenate([move, jnp.full((1,), -1.0, jnp.float32)])


def close_door(obs: jax.Array) -> jax.Array:
    """Reach the panel's outer face (the robot's side) and push it round until it is shut."""
    body = jnp.asarray(DOOR_BODY, jnp.float32)
    tcp, q = obs[0:3] + jnp.asarray(world.TCP_OFFSET, jnp.float32), angle_of_handle(obs[4:7])
    r, dz = 0.22, 0.07  # along the panel from the hinge, above the hinge's base height
    local = world.rotate_z(tcp - dd.door_hinge(body), -q)  # TCP in the door's frame
    on_face = (jnp.abs(local[0] - r) <= 0.05) & (local[1] <= -0.01) & (local[1] >= -0.06) & (
        jnp.abs(local[2] - dz) <= 0.03)
    reach = dd.door_panel_point(body, q, r, dz, side=-0.045)
    push = dd.door_panel_point(body, jnp.minimum(q + 0.3, dd.DOOR_HIGH), r, dz, side=-0.01)
    return _go(obs, jnp.where(on_face, push, reach))


def reopen_door(obs: jax.Array) -> jax.Array:
    """Over the handle, down into the gap behind its bar (the hook), then pull to the goal handle's angle."""
    body = jnp.asarray(DOOR_BODY, jnp.float32)
    tcp, q = obs[0:3] + jnp.asarray(world.TCP_OFFSET, jnp.float32), angle_of_handle(obs[4:7])
    goal_q = angle_of_handle(obs[11:14])
    hook = dd.door_hook(body, q)
    hooked = jnp.linalg.norm(tcp - hook) <= 0.03
    over = jnp.linalg.norm(tcp[:2] - hook[:2]) <= 0.02
    pull = tcp + dd.door_hook(body, q + jnp.clip(goal_q - q, -0.25, 0.25)) - hook  # the hook moves <= 0.25 rad
    above = hook + jnp.asarray([0.0, 0.0, 0.2], jnp.float32)
    return _go(obs, jnp.where(hooked, pull, jnp.where(over, hook, above)))


def make_earl_door() -> tuple[SawyerDoorKin, SawyerDoorKinParams]:
    env = SawyerDoorKin()
    return env, env.default_params


register("earl-door-kin", make_earl_door)

__all__ = [
    "DOOR_BODY",
    "close_door",
    "reopen_door",
    "EARL_GOAL_STATE",
    "EARL_INITIAL_STATE",
    "HANDLE_OBS",
    "HAND_INIT",
    "SawyerDoorKin",
    "SawyerDoorKinParams",
    "SawyerDoorKinState",
    "angle_of_handle",
    "handle_of_angle",
    "make_earl_door",
]
