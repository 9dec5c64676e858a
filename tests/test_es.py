"""The maximising evosax wrapper and the generic ES loop (on toy fitness functions)."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from host_devices import run_on_host_devices
from metarl.meta import (
    AllCandidatesFailedError,
    ESConfig,
    EvolutionStrategy,
    TrainerConfig,
    make_population_evaluator,
    replace_nonfinite,
    run_meta_training,
)

TARGET = jnp.linspace(-1.0, 1.0, 10)


def quadratic_fitness(key, population):
    del key
    return -jnp.sum((population["x"] - TARGET) ** 2, axis=-1)  # maximised at TARGET


def _run_es(es: EvolutionStrategy, generations: int, start: jax.Array):
    state = es.init(jax.random.PRNGKey(0), {"x": start})

    def generation(state, key):
        ask_key, tell_key = jax.random.split(key)
        population, state = es.ask(ask_key, state)
        return es.tell(tell_key, population, quadratic_fitness(None, population), state)

    state, metrics = jax.jit(lambda s: jax.lax.scan(generation, s, jax.random.split(jax.random.PRNGKey(1), generations)))(state)
    return state, metrics


STRATEGIES = {
    "OpenES": dict(learning_rate=0.1, sigma=0.3),
    "SNES": dict(learning_rate=0.3, sigma=0.5, optimizer="sgd"),
    "CMA_ES": dict(sigma=0.5),
    "Sep_CMA_ES": dict(sigma=0.5),
    "PGPE": dict(learning_rate=0.1, sigma=0.3),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_each_strategy_reduces_a_10d_quadratic(name):
    es = EvolutionStrategy(ESConfig(strategy=name, population_size=16, **STRATEGIES[name]), {"x": jnp.zeros(10)})
    start = jnp.zeros(10)
    state, metrics = _run_es(es, 60, start)
    before = float(-quadratic_fitness(None, {"x": start[None]})[0])  # 4.07
    after = float(-quadratic_fitness(None, {"x": es.mean(state)["x"][None]})[0])
    assert after < 0.02 * before, f"{name}: distance^2 {before:.3f} -> {after:.4f}"
    assert float(metrics["fitness_max"][-1]) > float(metrics["fitness_max"][0])  # maximising, not minimising


def test_strategy_names_are_forgiving_and_errors_are_clear():
    assert ESConfig(strategy="open_es").evosax_name == "Open_ES"
    assert ESConfig(strategy="sep-cma-es").evosax_name == "Sep_CMA_ES"
    with pytest.raises(ValueError, match="unknown ES strategy 'nope'"):
        ESConfig(strategy="nope")
    with pytest.raises(ValueError, match="even population_size"):
        ESConfig(population_size=7)
    with pytest.raises(ValueError, match="recombination weights"):
        EvolutionStrategy(ESConfig(strategy="CMA_ES", fitness_shaping="centered_rank"), {"x": jnp.zeros(3)})
    with pytest.raises(ValueError, match="does not support antithetic"):
        EvolutionStrategy(ESConfig(strategy="xNES"), {"x": jnp.zeros(3)})
    with pytest.raises(ValueError, match="always samples antithetic"):
        EvolutionStrategy(ESConfig(strategy="PGPE", antithetic=False), {"x": jnp.zeros(3)})


def test_centered_ranks_against_hand_computed_values():
    es = EvolutionStrategy(ESConfig(strategy="OpenES", population_size=4), {"x": jnp.zeros(2)})
    # Maximised fitness [3, 1, 2, 0]: evosax minimises -f = [-3, -1, -2, 0], ranks [0, 2, 1, 3],
    # centred rank/(n-1) - 1/2 -> the best candidate gets the lowest shaped value.
    np.testing.assert_allclose(es.shape_fitness(jnp.array([3.0, 1.0, 2.0, 0.0])), [-0.5, 1 / 6, -1 / 6, 0.5], atol=1e-6)
    # NaN becomes the worst value (1); the three tied 1s share rank (1+2+3)/3 = 2 -> 2/3 - 1/2.
    np.testing.assert_allclose(es.shape_fitness(jnp.array([1.0, 1.0, jnp.nan, 5.0])), [1 / 6, 1 / 6, 1 / 6, -0.5], atol=1e-6)


def test_tell_steps_towards_higher_fitness_by_hand():
    # OpenES, SGD lr 1, sigma 1, population [m+z1, m+z2, m-z1, m-z2] around m = 0.
    es = EvolutionStrategy(
        ESConfig(strategy="OpenES", population_size=4, sigma=1.0, learning_rate=1.0, optimizer="sgd"), {"x": jnp.zeros(2)}
    )
    state = es.init(jax.random.PRNGKey(0), {"x": jnp.zeros(2)})
    population = {"x": jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])}
    fitness = jnp.array([3.0, 1.0, 2.0, 0.0])  # shaped [-1/2, 1/6, -1/6, 1/2]
    state, metrics = es.tell(jax.random.PRNGKey(1), population, fitness, state)
    # grad = shaped . (pop - m) / (N sigma^2) = [(-1/2 + 1/6), (1/6 - 1/2)] / 4; mean -= grad
    np.testing.assert_allclose(es.mean(state)["x"], [1 / 12, 1 / 12], atol=1e-6)
    assert float(metrics["fitness_max"]) == 3.0 and int(metrics["num_nonfinite"]) == 0


@pytest.mark.parametrize("name", ["OpenES", "PGPE", "SNES", "CMA_ES", "Sep_CMA_ES"])
def test_antithetic_pairs_mirror_around_the_mean(name):
    es = EvolutionStrategy(ESConfig(strategy=name, population_size=6, sigma=0.5), {"a": jnp.zeros(2), "b": jnp.zeros((1, 2))})
    mean = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([[0.5, 3.0]])}
    state = es.init(jax.random.PRNGKey(0), mean)
    population, _ = jax.jit(es.ask)(jax.random.PRNGKey(4), state)
    assert population["a"].shape == (6, 2) and population["b"].shape == (6, 1, 2)
    flat = jax.vmap(es.ravel)(population)
    np.testing.assert_allclose(flat[:3] + flat[3:], np.tile(2 * es.ravel(mean), (3, 1)), atol=1e-5)
    assert float(jnp.min(jnp.abs(flat[:3] - es.ravel(mean)))) > 0  # real perturbations


def test_antithetic_off_gives_independent_samples():
    es = EvolutionStrategy(ESConfig(strategy="OpenES", population_size=4, antithetic=False), {"x": jnp.zeros(3)})
    population, _ = es.ask(jax.random.PRNGKey(0), es.init(jax.random.PRNGKey(0), {"x": jnp.zeros(3)}))
    assert float(jnp.max(jnp.abs(population["x"][:2] + population["x"][2:]))) > 1e-3


def test_sigma_and_learning_rate_schedules():
    config = ESConfig(
        strategy="OpenES", population_size=4, sigma=1.0, sigma_decay=0.5, sigma_min=0.3,
        learning_rate=1.0, lr_decay=0.5, optimizer="sgd",
    )
    es = EvolutionStrategy(config, {"x": jnp.zeros(2)})
    state = es.init(jax.random.PRNGKey(0), {"x": jnp.zeros(2)})
    z = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    fitness = jnp.array([3.0, 1.0, 2.0, 0.0])  # shaped [-1/2, 1/6, -1/6, 1/2]
    sigmas_used, sigmas_after, steps = [], [], []
    for _ in range(4):
        sigma, before = float(state.std), np.asarray(state.mean)
        state, _ = es.tell(jax.random.PRNGKey(1), {"x": state.mean + sigma * z}, fitness, state)
        sigmas_used.append(sigma)
        sigmas_after.append(float(state.std))
        steps.append(np.asarray(state.mean) - before)
    # evosax sets std = schedule(generation before the increment): 1, 0.5, then the 0.3 floor.
    np.testing.assert_allclose(sigmas_after, [1.0, 0.5, 0.3, 0.3], atol=1e-6)
    # SGD step = lr_t / sigma_t * (1/12) per coordinate, lr_t = 0.5^t.
    expected = [0.5**t / s / 12 for t, s in enumerate(sigmas_used)]
    np.testing.assert_allclose([st[0] for st in steps], expected, rtol=1e-5)
    np.testing.assert_allclose([st[1] for st in steps], expected, rtol=1e-5)


def test_replace_nonfinite_uses_the_worst_finite_value():
    fixed, count = replace_nonfinite(jnp.array([1.0, jnp.nan, 3.0, jnp.inf, -jnp.inf, 2.0]))
    np.testing.assert_array_equal(fixed, [1.0, 1.0, 3.0, 1.0, 1.0, 2.0])
    assert int(count) == 3


def test_nan_fitness_is_the_worst_in_tell_and_counted():
    es = EvolutionStrategy(ESConfig(strategy="OpenES", population_size=4, sigma=1.0), {"x": jnp.zeros(2)})
    state = es.init(jax.random.PRNGKey(0), {"x": jnp.zeros(2)})
    population = {"x": jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])}
    with_nan, metrics = es.tell(jax.random.PRNGKey(1), population, jnp.array([3.0, jnp.nan, 2.0, 0.0]), state)
    as_worst, _ = es.tell(jax.random.PRNGKey(1), population, jnp.array([3.0, 0.0, 2.0, 0.0]), state)
    np.testing.assert_array_equal(with_nan.mean, as_worst.mean)
    assert int(metrics["num_nonfinite"]) == 1 and bool(jnp.all(jnp.isfinite(with_nan.mean)))


def test_generation_with_all_candidates_failing_stops_with_clear_error(tmp_path):
    es = EvolutionStrategy(ESConfig(population_size=4), {"x": jnp.zeros(3)})
    def fitness(key, population):
        return jnp.where(population["x"][:, 0] > -1e9, jnp.nan, 0.0)

    with pytest.raises(AllCandidatesFailedError, match="generation 0: all 4 candidates"):
        run_meta_training(
            es, fitness, {"x": jnp.zeros(3)}, jax.random.PRNGKey(0), TrainerConfig(generations=2, show_progress=False), tmp_path
        )


def test_partial_failures_are_logged(tmp_path):
    es = EvolutionStrategy(ESConfig(population_size=4), {"x": jnp.zeros(3)})

    def fitness(key, population):  # the first candidate always "diverges"
        values = quadratic_fitness(key, {"x": jnp.pad(population["x"], ((0, 0), (0, 7)))})
        return values.at[0].set(jnp.nan)

    result = run_meta_training(
        es, fitness, {"x": jnp.zeros(3)}, jax.random.PRNGKey(0), TrainerConfig(generations=2, show_progress=False), tmp_path
    )
    assert [r["num_nonfinite"] for r in result.history] == [1, 1]
    assert all(np.isfinite(r["fitness_min"]) for r in result.history)


def _counting_fitness(key, population, extra):
    """A stateful fitness: the quadratic plus a per-generation offset drawn into the extra state."""
    offset = extra["offset"] + jax.random.uniform(key)
    values = quadratic_fitness(key, {"x": jnp.pad(population["x"], ((0, 0), (0, 7)))}) + offset
    extra = {"offset": offset, "calls": extra["calls"] + 1}
    return values, extra, {"offset": offset}


def _stateful_run(run_dir, generations, resume=False):
    es = EvolutionStrategy(ESConfig(population_size=4, sigma=0.3, learning_rate=0.1), {"x": jnp.zeros(3)})
    extra = {"offset": jnp.zeros(()), "calls": jnp.zeros((), jnp.int32)}
    config = TrainerConfig(generations=generations, checkpoint_every=1, show_progress=False)
    return run_meta_training(es, _counting_fitness, {"x": jnp.zeros(3)}, jax.random.PRNGKey(3), config, run_dir,
                             resume=resume, extra_state=extra)


def test_extra_state_rides_along_and_survives_resume(tmp_path):
    straight = _stateful_run(tmp_path / "straight", 3)
    assert int(straight.extra_state["calls"]) == 3
    assert [r["generation"] for r in straight.history] == [0, 1, 2]
    assert all("offset" in r and "fitness_mean" in r for r in straight.history)  # its metrics join the record
    _stateful_run(tmp_path / "resumed", 2)
    resumed = _stateful_run(tmp_path / "resumed", 3, resume=True)
    assert resumed.resumed_from == 2 and int(resumed.extra_state["calls"]) == 3
    np.testing.assert_array_equal(resumed.mean["x"], straight.mean["x"])
    np.testing.assert_array_equal(resumed.extra_state["offset"], straight.extra_state["offset"])
    assert [r["offset"] for r in resumed.history] == [r["offset"] for r in straight.history]


def test_one_compiled_program_serves_every_generation(tmp_path):
    traces = []

    def fitness(key, population, extra):
        traces.append(1)  # runs once per trace, never per call
        return _counting_fitness(key, population, extra)

    es = EvolutionStrategy(ESConfig(population_size=4), {"x": jnp.zeros(3)})
    extra = {"offset": jnp.zeros(()), "calls": jnp.zeros((), jnp.int32)}
    run_meta_training(es, fitness, {"x": jnp.zeros(3)}, jax.random.PRNGKey(0),
                      TrainerConfig(generations=3, show_progress=False), tmp_path, extra_state=extra)
    assert len(traces) == 1


def test_chunked_evaluation_equals_one_call():
    def fitness(key, population):  # candidate-wise, shares the key
        noise = jax.random.normal(key, (3,))
        return jnp.sum(jnp.tanh(population["x"] * noise), axis=-1)

    population = {"x": jax.random.normal(jax.random.PRNGKey(0), (8, 3))}
    whole = make_population_evaluator(fitness, 8)(jax.random.PRNGKey(1), population)
    chunked = make_population_evaluator(fitness, 8, chunk_size=2)(jax.random.PRNGKey(1), population)
    np.testing.assert_allclose(whole, chunked, rtol=1e-6)
    with pytest.raises(ValueError, match="must divide"):
        make_population_evaluator(fitness, 8, chunk_size=3)


_SHARDING_SCRIPT = textwrap.dedent(
    """
    import json, jax, jax.numpy as jnp
    from metarl.meta import make_population_evaluator
    def fitness(key, population):
        noise = jax.random.normal(key, (3,))
        return jnp.sum(jnp.tanh(population["x"] @ jnp.ones((3, 3)) * noise), axis=-1)
    population = {"x": jax.random.normal(jax.random.PRNGKey(0), (8, 3))}
    key = jax.random.PRNGKey(1)
    sharded = make_population_evaluator(fitness, 8, shard=True)(key, population)
    chunked = make_population_evaluator(fitness, 8, chunk_size=4, shard=True)(key, population)
    plain = make_population_evaluator(fitness, 8, shard=False)(key, population)
    print(json.dumps({"devices": jax.local_device_count(), "sharded": sharded.tolist(),
                      "chunked": chunked.tolist(), "plain": plain.tolist(),
                      "spec": str(sharded.sharding)}))
    """
)


def test_population_is_sharded_over_two_host_devices():
    result = run_on_host_devices(_SHARDING_SCRIPT, 2, timeout=120)
    assert result["devices"] == 2
    assert "population" in result["spec"]  # really laid out over the mesh axis
    np.testing.assert_allclose(result["sharded"], result["plain"], rtol=1e-6)
    np.testing.assert_allclose(result["chunked"], result["plain"], rtol=1e-6)
