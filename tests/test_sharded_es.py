"""The ES population spread over devices: the same bits on 1 and 4 devices (metarl.meta.devices); 3 devices (a
padded round) with a cheap fitness. Two processes x two devices: tests/test_distributed.py."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from host_devices import run_on_host_devices
from metarl.meta.devices import DeviceEvaluator, default_width
from metarl.meta.trainer import TrainerConfig

# Real inner PPO runs (LPO drift, 2 epochs x 2 minibatches): float rounding inside them depends on how the program
# is compiled, and Adam amplifies it, so equal bits here mean every device ran the very same per-block program.
_SCRIPT = textwrap.dedent(
    """
    import json, tempfile, jax
    from metarl.agents.ppo import PPOConfig
    from metarl.io.checkpoint import state_digest
    from metarl.meta import ESConfig, EvolutionStrategy, TrainerConfig, run_meta_training
    from metarl.meta.fitness import FitnessConfig, make_inner_fitness
    from metarl.objectives import make_objective
    ppo = PPOConfig(total_timesteps=256, num_envs=4, num_steps=32, update_epochs=2, num_minibatches=2,
                    hidden_sizes=(16,), lr=0.03)
    objective = make_objective("lpo")
    fitness = make_inner_fitness(objective, ["CartPole-v1"], ppo, FitnessConfig(num_seeds=2, reduce="mean"),
                                 {"CartPole-v1": 20.0})
    mean = objective.init(jax.random.PRNGKey(0))
    es = EvolutionStrategy(ESConfig(population_size=8, sigma=0.5), mean)
    runs = {}
    for devices in (1, 4):
        with tempfile.TemporaryDirectory() as run_dir:
            config = TrainerConfig(generations=2, chunk_size=2, devices=devices, show_progress=False)
            result = run_meta_training(es, fitness, mean, jax.random.PRNGKey(1), config, run_dir)
        runs[devices] = {"state": state_digest(result.es_state),
                         "fitness": [[r["fitness_min"], r["fitness_max"]] for r in result.history]}
    import jax.numpy as jnp, numpy as np
    from metarl.meta.devices import DeviceEvaluator
    cheap = lambda key, block: jnp.sum(jnp.tanh(block["x"] * jax.random.normal(key, (3,))), axis=-1)
    population = {"x": jax.random.normal(jax.random.PRNGKey(0), (8, 3))}
    padded = DeviceEvaluator(cheap, 8, 2, jax.devices()[:3])  # 4 blocks on 3 devices: a padded second round
    alone = DeviceEvaluator(cheap, 8, 2, jax.devices()[:1])
    same = bool(np.array_equal(padded(jax.random.PRNGKey(1), population), alone(jax.random.PRNGKey(1), population)))
    print(json.dumps({"device_count": jax.device_count(), "runs": runs, "rounds_3": padded.rounds,
                      "padding_3": padded.padding, "padded_equal": same}))
    """
)


def test_sharded_es_equals_one_device_bit_for_bit():
    result = run_on_host_devices(_SCRIPT, 4)
    assert result["device_count"] == 4
    runs = result["runs"]
    assert set(runs) == {"1", "4"}
    assert result["rounds_3"] == 2 and result["padding_3"] == pytest.approx(2 / 6)  # 4 blocks in 6 slots
    assert result["padded_equal"]
    assert all(run == runs["1"] for run in runs.values()), runs
    low, high = runs["1"]["fitness"][0]
    assert high > low  # the candidates really differ, so a shuffled population order would show


def _fitness(key, population):
    return jnp.sum(jnp.tanh(population["x"] * jax.random.normal(key, (3,))), axis=-1)


def test_blocks_keep_population_order():
    population = {"x": jax.random.normal(jax.random.PRNGKey(0), (6, 3))}
    key = jax.random.PRNGKey(1)
    evaluator = DeviceEvaluator(_fitness, 6, width=2, devices=jax.devices()[:1])
    np.testing.assert_array_equal(evaluator(key, population), np.asarray(jax.jit(_fitness)(key, population)))
    assert evaluator.num_blocks == 3 and evaluator.rounds == 3 and evaluator.padding == 0.0


@pytest.mark.parametrize(("population", "width"), [(16, 8), (12, 6), (6, 6), (4, 4), (10, 5), (14, 7)])
def test_default_width_is_the_largest_divisor_up_to_eight(population, width):
    assert default_width(population) == width


def test_bad_widths_and_device_counts_are_refused():
    with pytest.raises(ValueError, match="chunk_size=3 must divide meta.population_size=8"):
        DeviceEvaluator(_fitness, 8, width=3)
    with pytest.raises(ValueError, match=r"devices=99 but this run has \d+ device"):
        TrainerConfig(generations=1, devices=99).pick_devices()
    with pytest.raises(ValueError, match="devices must be >= 1"):
        TrainerConfig(generations=1, devices=0)
