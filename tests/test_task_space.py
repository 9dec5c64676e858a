"""TaskSpace: sampling bounds, membership, vector encoding, derive hook, jit/vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from envs import Field, TaskSpace, index_tasks, stack_tasks


@struct.dataclass
class Params:
    max_steps_in_episode: int = 100
    gravity: float = 9.8
    lr: float = 1e-2
    n_objs: int = 3
    flags: jax.Array = struct.field(default_factory=lambda: jnp.zeros(3, bool))
    goal: jax.Array = struct.field(default_factory=lambda: jnp.zeros(2, jnp.float32))
    total: float = 0.0  # derived: gravity + n_objs


def make_space(**kw) -> TaskSpace:
    fields = (
        Field("gravity", 5.0, 15.0),
        Field("lr", 1e-4, 1e-1, log=True),
        Field("n_objs", 1, 4, kind="int"),
        Field("flags", shape=(3,), kind="bool"),
        Field("goal", low=[-1.0, 0.0], high=[1.0, 2.0], shape=(2,)),
    )
    return TaskSpace(Params(), fields, name="toy", **kw)


def test_description():
    space = make_space()
    assert space.dim == 1 + 1 + 1 + 3 + 2
    assert space.names == ("gravity", "lr", "n_objs", "flags", "goal")
    np.testing.assert_allclose(space.low, [5.0, 1e-4, 1, 0, 0, 0, -1, 0], rtol=1e-6)
    np.testing.assert_allclose(space.high, [15.0, 0.1, 4, 1, 1, 1, 1, 2], rtol=1e-6)
    assert space.discrete_mask.tolist() == [False, False, True, True, True, True, False, False]
    assert space.vector_names() == ["gravity", "lr", "n_objs", "flags[0]", "flags[1]", "flags[2]", "goal[0]", "goal[1]"]
    assert space.low.dtype == np.float32


def test_samples_inside_bounds_with_right_dtypes():
    space = make_space()
    tasks = jax.jit(lambda k: space.sample_batch(k, 4000))(jax.random.key(0))
    assert tasks.gravity.dtype == jnp.float32 and tasks.n_objs.dtype == jnp.int32
    assert tasks.flags.dtype == jnp.bool_ and tasks.goal.shape == (4000, 2)
    assert bool(jnp.all(jax.vmap(space.contains)(tasks)))
    g = np.asarray(tasks.gravity)
    assert g.min() >= 5.0 and g.max() <= 15.0
    # uniform: mean 10, and both halves get about half the mass
    assert abs(g.mean() - 10.0) < 0.2
    goal = np.asarray(tasks.goal)
    assert goal[:, 0].min() >= -1 and goal[:, 0].max() <= 1 and goal[:, 1].min() >= 0 and goal[:, 1].max() <= 2
    # non-free fields are copied from the default
    assert np.all(np.asarray(tasks.max_steps_in_episode) == 100)


def test_log_uniform_field_is_uniform_in_log_space():
    space = make_space()
    lr = np.asarray(space.sample_batch(jax.random.key(1), 20000).lr)
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # log10 uniform on [-4, -1]: mean -2.5, each decade ~1/3 of the samples
    logs = np.log10(lr)
    assert abs(logs.mean() - (-2.5)) < 0.03
    frac_first_decade = np.mean(lr < 1e-3)
    assert abs(frac_first_decade - 1 / 3) < 0.02


def test_int_field_covers_both_ends_evenly():
    space = make_space()
    n = np.asarray(space.sample_batch(jax.random.key(2), 20000).n_objs)
    counts = np.bincount(n, minlength=6)
    assert counts[0] == 0 and counts[5] == 0
    np.testing.assert_allclose(counts[1:5] / n.size, 0.25, atol=0.02)


def test_log_int_field():
    f = Field("n", 1, 3, kind="int", log=True)
    x = np.asarray(jax.vmap(f.sample)(jax.random.split(jax.random.key(3), 30000)))
    assert set(np.unique(x)) == {1, 2, 3}
    # floor of logU[1, 4): P(1) = ln2/ln4 = 1/2, P(2) = ln(3/2)/ln4, P(3) = ln(4/3)/ln4
    expected = np.array([0.5, np.log(1.5) / np.log(4), np.log(4 / 3) / np.log(4)])
    np.testing.assert_allclose(np.bincount(x)[1:] / x.size, expected, atol=0.015)


def test_contains_rejects_out_of_bounds_and_non_integers():
    space = make_space()
    ok = space.default.replace(gravity=10.0, lr=0.01, n_objs=2)
    assert bool(space.contains(ok))
    assert not bool(space.contains(ok.replace(gravity=15.5)))
    assert not bool(space.contains(ok.replace(lr=0.5)))
    assert not bool(space.contains(ok.replace(n_objs=5)))
    assert not bool(space.contains(ok.replace(n_objs=2.5)))
    assert not bool(space.contains(ok.replace(goal=jnp.array([0.0, 3.0]))))
    assert not bool(space.contains(ok.replace(goal=jnp.zeros(3))))  # wrong shape
    # jit + vmap over a batch with one bad task
    batch = stack_tasks([ok, ok.replace(gravity=4.0), ok])
    assert jax.jit(jax.vmap(space.contains))(batch).tolist() == [True, False, True]


def test_check_raises_naming_the_field():
    space = make_space()
    good = space.default.replace(gravity=10.0, lr=0.01, n_objs=2)
    space.check(good)
    with pytest.raises(ValueError, match="gravity"):
        space.check(good.replace(gravity=20.0))
    with pytest.raises(ValueError, match="goal"):
        space.check(good.replace(goal=jnp.zeros(5)))


def test_vector_round_trip():
    space = make_space()
    tasks = space.sample_batch(jax.random.key(4), 64)
    vecs = jax.vmap(space.to_vector)(tasks)
    assert vecs.shape == (64, space.dim) and vecs.dtype == jnp.float32
    back = jax.jit(jax.vmap(space.from_vector))(vecs)
    for name in space.names:
        a, b = np.asarray(getattr(tasks, name)), np.asarray(getattr(back, name))
        assert a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=name)
    np.testing.assert_array_equal(np.asarray(jax.vmap(space.to_vector)(back)), np.asarray(vecs))


def test_from_vector_clips_rounds_and_checks_length():
    space = make_space()
    v = jnp.array([100.0, 0.0, 2.6, 0.2, 0.9, 0.0, -5.0, 1.0])
    p = space.from_vector(v)
    assert float(p.gravity) == 15.0
    assert float(p.lr) == pytest.approx(1e-4)
    assert int(p.n_objs) == 3
    assert p.flags.tolist() == [False, True, False]
    assert p.goal.tolist() == [-1.0, 1.0]
    assert bool(space.contains(p))
    with pytest.raises(ValueError, match="shape"):
        space.from_vector(jnp.zeros(3))


def test_normalize_denormalize():
    space = make_space()
    v = space.to_vector(space.sample(jax.random.key(5)))
    u = space.normalize(v)
    assert np.all((np.asarray(u) >= 0) & (np.asarray(u) <= 1))
    np.testing.assert_allclose(space.denormalize(u), v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(space.normalize(space.low), 0.0)
    np.testing.assert_allclose(space.normalize(space.high), 1.0)


def test_derive_hook_applies_to_sample_uniform_and_from_vector():
    space = make_space(derive=lambda p: p.replace(total=p.gravity + p.n_objs))
    t = space.sample(jax.random.key(6))
    assert float(t.total) == pytest.approx(float(t.gravity) + int(t.n_objs))
    back = space.from_vector(space.to_vector(t))
    assert float(back.total) == pytest.approx(float(t.total))
    batch = space.sample_batch(jax.random.key(7), 8)
    np.testing.assert_allclose(batch.total, batch.gravity + batch.n_objs, rtol=1e-6)


def test_structured_sampler_is_used_and_derived():
    def sampler(key):
        return Params().replace(gravity=jnp.float32(7.0), n_objs=jax.random.randint(key, (), 1, 3))

    space = make_space(sampler=sampler, derive=lambda p: p.replace(total=p.gravity * 2))
    tasks = space.sample_batch(jax.random.key(8), 32)
    assert np.all(np.asarray(tasks.gravity) == 7.0) and np.all(np.asarray(tasks.total) == 14.0)
    # ``uniform`` ignores the structured sampler
    assert np.asarray(space.uniform(jax.random.key(9)).gravity) != 7.0


def test_empty_space():
    space = TaskSpace(Params(), (), name="single")
    assert space.dim == 0 and space.low.shape == (0,)
    assert space.sample(jax.random.key(0)) == space.default
    assert space.to_vector(space.default).shape == (0,)
    assert space.from_vector(jnp.zeros(0)) == space.default
    assert bool(space.contains(space.default))


def test_constructor_validation():
    with pytest.raises(ValueError, match="nope"):
        TaskSpace(Params(), (Field("nope"),))
    with pytest.raises(ValueError, match="duplicate"):
        TaskSpace(Params(), (Field("gravity"), Field("gravity")))
    with pytest.raises(ValueError, match="goal"):
        TaskSpace(Params(), (Field("goal", shape=(3,)),))
    with pytest.raises(ValueError, match="low > high"):
        Field("x", 2.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        Field("x", 0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="kind"):
        Field("x", kind="complex")


def test_stack_and_index_tasks():
    space = make_space()
    tasks = [space.sample(k) for k in jax.random.split(jax.random.key(10), 3)]
    batch = stack_tasks(tasks)
    assert batch.gravity.shape == (3,) and batch.goal.shape == (3, 2)
    picked = jax.jit(index_tasks)(batch, jnp.array([2, 0]))
    np.testing.assert_array_equal(picked.gravity, [tasks[2].gravity, tasks[0].gravity])
