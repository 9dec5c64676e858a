"""Where does a pull open the drawer? The same probe in real Meta-World v3 and in the JAX drawer-open.

    METAWORLD_PYTHON=.venv-metaworld/bin/python .venv/bin/python scripts/metaworld_drawer_pull_map.py \
        [--grid standard|table|parked|wound-up] [--out F]

Each cell of a grid puts the TCP at an offset ``(dx, dy, dz)`` from the
drawer's handle (the observed handle point, 1 cm in front of the bar's axis),
then moves it 0.2 m toward the robot, and records how far the handle followed.
The TCP is driven by the same proportional controller in both worlds, along
one of these routes:

* ``above``: over the target at 12 cm above the handle, then straight down;
* ``low-front``: 3 cm above the table, 12 cm in front of the handle, then
  straight at the target (the way a policy that comes in low meets the bar);
* ``open-in-place`` (``--grid parked``): ``low-front`` with the fingers
  closed, then, still pressing at the target, the fingers open for 30 steps
  before the pull (open): can a hand parked against the bar hook it that way?
* ``wound-up 30`` / ``wound-up 60`` (``--grid wound-up``): ``low-front`` with
  the fingers closed, then 250 steps of a steady push toward the drawer
  (action y = 0.3, as SAC's parked seeds do), which the bar stops while the
  mocap runs on to the hand bound; then, instead of the controller's pull, 30
  or 60 steps of a full-speed pull down and back (action (0, -1, -1)): how
  long before a wound-up hand moves the drawer? The mocap's lead over the hand
  after the push is printed for both worlds.

The walls decide where the TCP really ends (reported as the reached offset);
a cell *pulls* when the handle moved more than 5 cm. ``--grid table`` probes
the table alone, finer: the TCP lowered from above as far as it goes, 2 cm
steps up to 16 cm beside the handle's centre and 8 cm in front and behind. The script runs itself
under ``METAWORLD_PYTHON`` (``make metaworld-venv``) for the MuJoCo side and
prints one markdown table of the cells where the two worlds disagree, plus the
agreement counts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys

ROUTES = ("above", "low-front")
GRIPS = (-1.0, 1.0)  # open, closed
DX = (0.0, 0.04, 0.06, 0.08)
DY = (-0.02, 0.0, 0.02, 0.04)
DZ = (0.02, 0.0, -0.02, -0.04, -0.06, -0.08)
TABLE_DX = tuple(0.02 * i for i in range(9))
TABLE_DY = tuple(0.02 * i for i in range(-4, 5))
GRIDS = {
    "standard": (ROUTES, GRIPS, DX, DY, DZ),
    "table": (("above",), GRIPS, TABLE_DX, TABLE_DY, (-0.09,)),  # below the reach of the TCP in both worlds
    # where SAC's stuck seeds park (in front of the bar, at and under its height), fingers opened there
    "parked": (("open-in-place",), (-1.0,), (0.0, 0.04), DY, (0.0, -0.02, -0.04, -0.06)),
}
PUSH_Y, PUSH_STEPS = 0.3, 250  # wound-up routes: the steady push toward the drawer
WOUND_PULLS = {"wound-up 30": 30, "wound-up 60": 60}  # then this many steps of a full-speed pull, down and back
# where SAC's parked seeds stand: 0.5 cm in front of the observed handle, 2.5 / 4.5 / 6.9 cm under it
GRIDS["wound-up"] = (tuple(WOUND_PULLS), (1.0,), (0.0,), (-0.005,), (-0.025, -0.045, -0.069))
PULLED = 0.05  # handle displacement that counts as a pull
GAIN, APPROACH_STEPS, SETTLE_STEPS, OPEN_STEPS, PULL_STEPS = 10.0, 70, 60, 30, 60
CLOSED = 1.0


def approach_grip(route: str, grip: float) -> float:
    """The gripper command on the way in: ``open-in-place`` comes in closed and opens at the target."""
    return CLOSED if route == "open-in-place" else grip


def phase_of(route: str) -> str:
    """What a route does between reaching its target and the pull: nothing, open the fingers, or push on."""
    return "open" if route == "open-in-place" else "wound" if route in WOUND_PULLS else "plain"


def cells(grid: str = "standard") -> list[tuple]:
    return list(itertools.product(*GRIDS[grid]))


def waypoints(route: str, handle, dx: float, dy: float, dz: float):
    """The approach point and the target for one cell (absolute positions)."""
    target = [handle[0] + dx, handle[1] + dy, handle[2] + dz]
    if route == "above":
        return [target[0], target[1], handle[2] + 0.12], target
    return [target[0], handle[1] - 0.12, 0.03], target


def metaworld_side(grid: str = "standard") -> list[dict]:
    """Runs under the metaworld venv (numpy and metaworld only)."""
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the Meta-World/* envs)
    import numpy as np

    env = gym.make("Meta-World/MT1", env_name="drawer-open-v3", seed=0)
    unwrapped = env.unwrapped

    def go(target, grip, steps):
        obs = None
        for _ in range(steps):
            move = np.clip((np.asarray(target) - unwrapped.tcp_center) * GAIN, -1.0, 1.0)
            obs, *_ = env.step(np.r_[move, grip].astype(np.float32))
        return obs

    def hold(action, steps):
        obs = None
        for _ in range(steps):
            obs, *_ = env.step(np.asarray(action, np.float32))
        return obs

    out = []
    for route, grip, dx, dy, dz in cells(grid):
        obs, _ = env.reset(seed=0)
        handle = obs[4:7].copy()
        approach, target = waypoints(route, handle, dx, dy, dz)
        go(approach, approach_grip(route, grip), APPROACH_STEPS)
        obs = go(target, approach_grip(route, grip), SETTLE_STEPS)
        if phase_of(route) == "open":
            obs = go(target, grip, OPEN_STEPS)
        if phase_of(route) == "wound":
            obs = hold([0.0, PUSH_Y, 0.0, grip], PUSH_STEPS)
        reached = (unwrapped.tcp_center - obs[4:7]).tolist()
        ahead = (unwrapped.data.mocap_pos[0] - obs[:3]).tolist()  # the observed hand is the end effector
        if phase_of(route) == "wound":
            obs = hold([0.0, -1.0, -1.0, grip], WOUND_PULLS[route])
        else:
            obs = go(unwrapped.tcp_center + np.array([0.0, -0.2, 0.0]), grip, PULL_STEPS)
        out.append({"handle": handle.tolist(), "reached": reached, "ahead": ahead, "pulled": float(handle[1] - obs[5])})
    return out


def jax_side(handles, grid: list[tuple] | None = None) -> list[dict]:
    """The cells of ``grid`` (default: all) with each cell's drawer where Meta-World's reset put it."""
    grid = cells() if grid is None else grid
    import jax
    import jax.numpy as jnp
    import numpy as np

    import envs
    from envs.manipulation import world
    from envs.manipulation.task_registry import get_task

    env, _ = envs.make("drawer-open-v3")
    task = get_task("drawer-open")
    base = env.params_for("drawer-open", obj_init=jnp.zeros(3, jnp.float32))
    handle_in_case = task.handle(task.reset_state(base))  # the handle with the case at the origin
    key = jax.random.key(0)

    def go(state, target, grip, steps, params):
        def body(s, _):
            move = jnp.clip((target - world.tcp_of(s.hand)) * GAIN, -1.0, 1.0)
            _, s, *_ = env.step_env(key, s, jnp.append(move, grip), params)
            return s, None
        return jax.lax.scan(body, state, None, steps)[0]

    def hold(state, action, steps, params, most):
        """``steps`` (at most ``most``) steps of one fixed action."""
        def body(s, t):
            _, moved, *_ = env.step_env(key, s, action, params)
            return jax.tree.map(lambda a, b: jnp.where(t < steps, a, b), moved, s), None
        return jax.lax.scan(body, state, jnp.arange(most))[0]

    phases = {phase_of(route) for route, *_ in grid}
    if len(phases) > 1:
        raise ValueError("the open-in-place and wound-up routes each run on a grid of its own "
                         "(--grid parked, --grid wound-up)")
    phase = phases.pop()
    longest_pull = max(WOUND_PULLS.values())

    def probe(params, approach, target, come_in, grip, pull_steps):
        state = task.reset_state(params)
        handle = task.handle(state)
        state = go(go(state, approach, come_in, APPROACH_STEPS, params), target, come_in, SETTLE_STEPS, params)
        if phase == "open":
            state = go(state, target, grip, OPEN_STEPS, params)
        if phase == "wound":
            state = hold(state, jnp.array([0.0, PUSH_Y, 0.0, 0.0]).at[3].set(grip), PUSH_STEPS, params, PUSH_STEPS)
        reached = world.tcp_of(state.hand) - task.handle(state)
        ahead = state.mocap - state.hand
        if phase == "wound":
            state = hold(state, jnp.array([0.0, -1.0, -1.0, 0.0]).at[3].set(grip), pull_steps, params, longest_pull)
        else:
            state = go(state, world.tcp_of(state.hand) + jnp.array([0.0, -0.2, 0.0]), grip, PULL_STEPS, params)
        return reached, ahead, handle[1] - task.handle(state)[1]

    points = [waypoints(route, h, dx, dy, dz) for (route, _, dx, dy, dz), h in zip(grid, handles)]
    approach = jnp.asarray([p[0] for p in points], jnp.float32)
    target = jnp.asarray([p[1] for p in points], jnp.float32)
    grip = jnp.asarray([c[1] for c in grid], jnp.float32)
    come_in = jnp.asarray([approach_grip(c[0], c[1]) for c in grid], jnp.float32)
    pull_steps = jnp.asarray([WOUND_PULLS.get(c[0], 0) for c in grid], jnp.int32)
    each = [env.params_for("drawer-open", obj_init=np.asarray(h) - np.asarray(handle_in_case)) for h in handles]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *each)
    reached, ahead, pulled = jax.jit(jax.vmap(probe))(params, approach, target, come_in, grip, pull_steps)
    return [{"reached": r.tolist(), "ahead": a.tolist(), "pulled": float(p)}
            for r, a, p in zip(np.asarray(reached), np.asarray(ahead), np.asarray(pulled))]


def table(ours: list[dict], theirs: list[dict], grid: list[tuple] | None = None) -> tuple[str, dict]:
    """The agreement counts and a markdown table of the cells where the two worlds disagree."""
    grid = cells() if grid is None else grid
    counts = {"both pull": 0, "neither": 0, "Meta-World only": 0, "ours only": 0}
    rows = []
    for cell, a, b in zip(grid, ours, theirs):
        pa, pb = a["pulled"] > PULLED, b["pulled"] > PULLED
        key = "both pull" if pa and pb else "neither" if not (pa or pb) else "ours only" if pa else "Meta-World only"
        counts[key] += 1
        if pa != pb:
            route, grip, dx, dy, dz = cell
            fmt = lambda v: "(" + ", ".join(f"{x:+.3f}" for x in v) + ")"
            rows.append(f"| {route} | {'open' if grip < 0 else 'closed'} | ({dx:+.2f}, {dy:+.2f}, {dz:+.2f}) | "
                        f"{fmt(a['reached'])} / {fmt(b['reached'])} | {a['pulled']:.3f} / {b['pulled']:.3f} |")
    head = ["| route | gripper | target offset from the handle | reached offset (ours / MW) | handle pulled, m "
            "(ours / MW) |", "|---|---|---|---|---|"]
    summary = ", ".join(f"{k}: {v}" for k, v in counts.items())
    return "\n".join([f"{len(ours)} cells; {summary}.", "", *head, *rows]), counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metaworld-side", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="standard",
                        help="standard: 384 cells around the handle; table: the TCP on the table, finer; "
                             "parked: a closed hand stopped in front of the bar opens its fingers there; "
                             "wound-up: it pushes on for 250 steps, then pulls at full speed for 30 or 60")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    if args.metaworld_side:
        print(json.dumps(metaworld_side(args.grid)))
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from metaworld_crosscheck import metaworld_json

    theirs = metaworld_json(__file__, "--grid", args.grid)
    import metarl.runtime

    metarl.runtime.configure_cpu()  # before JAX starts
    grid = cells(args.grid)
    ours = jax_side([cell["handle"] for cell in theirs], grid)
    text, _ = table(ours, theirs, grid)
    if args.grid == "wound-up":
        def cm(rows, read):
            return ", ".join(f"{100 * read(row):.1f}" for row in rows)

        def offsets(rows):
            return "; ".join("(" + ", ".join(f"{100 * x:.1f}" for x in row["reached"]) + ")" for row in rows)

        lead, pulled = (lambda row: row["ahead"][1]), (lambda row: row["pulled"])
        text += (f"\n\nMocap ahead of the hand along y after the push, cm, per cell (ours / MW): "
                 f"{cm(ours, lead)} / {cm(theirs, lead)}.\n"
                 f"TCP from the handle after the push, cm (ours / MW): {offsets(ours)} / {offsets(theirs)}.\n"
                 f"Handle pulled per cell, cm (ours / MW): {cm(ours, pulled)} / {cm(theirs, pulled)}.")
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
