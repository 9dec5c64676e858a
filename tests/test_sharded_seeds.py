"""metarl-train's seeds in blocks over devices (seed_block, metarl.parallel.BlockMap): the same bits on 1 and 2."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from host_devices import run_on_host_devices
from metarl.jobs.train import seed_block
from metarl.parallel import BlockMap

# The job itself, with Adam from the optimizer group (a 2-replica pmap rounded differently with it), two chunks
# (the state goes through the host between them, PRNG keys included) and a resume from the first checkpoint.
_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, shutil, tempfile
    from pathlib import Path
    import jax
    from hydra import compose, initialize_config_module
    import metarl.parallel
    from metarl.jobs.train import run

    def train(block, devices, resume_from=None):
        metarl.parallel.jax.devices = lambda: all_devices[:devices]
        overrides = ["seeds=4", f"seed_block={block}", "agent.total_timesteps=1024", "agent.num_steps=32",
                     "agent.num_envs=4", "progress=false", "checkpoint_every=4"]
        with initialize_config_module("configs", version_base=None):
            cfg = compose("train", overrides=overrides + (["resume=true"] if resume_from else []))
        run_dir = Path(resume_from or tempfile.mkdtemp())
        run(cfg, run_dir)
        return hashlib.sha256((run_dir / "metrics.jsonl").read_bytes()).hexdigest(), run_dir

    all_devices = jax.devices()
    one, one_dir = train(2, 1)
    two, two_dir = train(2, 2)
    whole, _ = train("null", 1)
    shutil.rmtree(two_dir / "checkpoints" / "8")  # the last checkpoint lost: resume from update 4
    resumed, _ = train(2, 2, resume_from=two_dir)
    print(json.dumps({"one": one, "two": two, "resumed": resumed, "whole": whole}))
    """
)


def test_seed_blocks_give_the_same_bits_on_one_and_two_devices_and_resume_exactly():
    digests = run_on_host_devices(_SCRIPT, 2)
    assert digests["one"] == digests["two"] == digests["resumed"]
    assert digests["whole"]  # all seeds in one program: its own rounding, not compared


def test_block_map_keeps_item_order_and_typed_keys():
    import jax

    keys = jax.random.split(jax.random.key(3), 6)
    items = {"key": keys, "x": np.arange(6.0)}
    fn = jax.vmap(lambda item: {"key": jax.random.split(item["key"])[0],
                                "y": item["x"] * jax.random.uniform(item["key"])})
    spread = BlockMap(fn, 6, 2)
    out = spread(items)
    expected = jax.jit(fn)(items)
    np.testing.assert_array_equal(out["y"], np.asarray(expected["y"]))
    np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(expected["key"]))
    assert spread.num_blocks == 3


@pytest.mark.parametrize(("value", "seeds", "message"), [(3, 4, "seed_block=3 must divide seeds=4"),
                                                         (0, 4, "seed_block")])
def test_seed_block_must_divide_the_seeds(value, seeds, message):
    with pytest.raises(ValueError, match=message):
        seed_block(value, seeds)
    assert seed_block(None, 4) is None and seed_block(2, 4) == 2
