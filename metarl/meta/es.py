"""A maximising evolution strategy over any meta-parameter pytree, built on evosax.

evosax (0.3.x) minimises and works on flat vectors.  ``EvolutionStrategy``
hides both: it ravels the meta-parameter pytree itself, hands evosax a flat
template, and negates fitness in exactly one place (``_to_evosax``).  Any
evosax *distribution-based* algorithm can be picked by name; ``OpenES``,
``SNES``, ``CMA_ES``, ``Sep_CMA_ES`` and ``PGPE`` are tested.

Fitness shaping.  evosax strategies read shaped fitness in one of two
conventions: gradient estimators (OpenES, PGPE, ARS, ...) *minimise* a shaped
score, while recombination strategies (CMA-ES, SNES, xNES, ...) expect
recombination *weights* (larger = better) produced by their own rank-weights
shaping.  ``fitness_shaping="auto"`` therefore uses centred ranks for gradient
estimators and the strategy's own weights otherwise; asking for centred ranks
on a weights strategy raises instead of silently ascending the wrong way.

Antithetic sampling.  Population layout is ``[mean + s*z, mean - s*z]``
(first half / second half), pair i = (i, i + P/2).  Strategies with a native
option (OpenES) or built-in mirroring (PGPE) use it; SNES, CMA-ES, Sep-CMA-ES
and SimpleES recompute noise from the population in ``tell``, so we mirror
their second half around the mean here.

Schedules.  ``learning_rate`` (with ``lr_decay`` per generation, floored at
``lr_min``) drives the optax optimizer of strategies that take one;
``sigma`` is the initial search std (``std_init``); ``sigma_decay`` /
``sigma_min`` schedule it for OpenES, which has no self-adaptation (the other
strategies adapt their own std).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import distribution_based_algorithms
from evosax.core import fitness_shaping as evosax_shaping
from jax import flatten_util

from metarl.config import check_fields, option

# evosax minimises; we maximise.  This is the only place the sign is flipped.
_EVOSAX_SIGN = -1.0


def _to_evosax(fitness: jax.Array) -> jax.Array:
    return _EVOSAX_SIGN * fitness


def _canonical(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_STRATEGIES = {_canonical(k): k for k in distribution_based_algorithms}
_MIRRORABLE = {"SNES", "CMA_ES", "Sep_CMA_ES", "SimpleES"}
_ALWAYS_ANTITHETIC = {"PGPE", "ARS"}
_SHAPING = {
    "centered_rank": evosax_shaping.centered_rank_fitness_shaping_fn,
    "z_score": evosax_shaping.standardize_fitness_shaping_fn,
    "identity": evosax_shaping.identity_fitness_shaping_fn,
}


def _strategy_options(name: str) -> Any:
    """The keyword parameters of the evosax strategy ``name`` (what it can be told)."""
    return inspect.signature(distribution_based_algorithms[name].__init__).parameters


@dataclasses.dataclass(frozen=True)
class ESConfig:
    """The ``meta`` section's ES settings; each field declares what it accepts (:func:`metarl.config.option`)."""

    strategy: str = "OpenES"  # any distribution-based evosax strategy; case, '_' and '-' are ignored
    population_size: int = option(16, ge=2)
    sigma: float = option(0.03, gt=0)
    sigma_decay: float = option(1.0, gt=0, le=1)
    sigma_min: float = option(0.0, ge=0)
    learning_rate: float = option(0.03, gt=0)
    lr_decay: float = option(1.0, gt=0, le=1)
    lr_min: float = option(0.0, ge=0)
    optimizer: str = option("adam", choices=("adam", "sgd"))  # for strategies that take an optax optimizer
    adam_b1: float = option(0.9, ge=0, lt=1)
    fitness_shaping: str = option("auto", choices=("auto", *_SHAPING))
    antithetic: bool = True

    def __post_init__(self) -> None:
        check_fields(self)
        if _canonical(self.strategy) not in _STRATEGIES:
            near = difflib.get_close_matches(_canonical(self.strategy), list(_STRATEGIES), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(_STRATEGIES[n] for n in near)}?" if near else (
                f"distribution-based evosax strategies: {', '.join(sorted(distribution_based_algorithms))}")
            raise ValueError(f"ESConfig.strategy: unknown ES strategy {self.strategy!r} ({hint})")
        if self.antithetic and self.population_size % 2:
            raise ValueError(f"ESConfig.population_size: antithetic sampling needs an even population_size, "
                             f"got {self.population_size}")
        self._check_strategy_fits()

    def _check_strategy_fits(self) -> None:
        """What :class:`EvolutionStrategy` would refuse for this strategy, refused before anything runs."""
        name, accepted = self.evosax_name, _strategy_options(self.evosax_name)
        default_shaping = accepted["fitness_shaping_fn"].default if "fitness_shaping_fn" in accepted else None
        if self.fitness_shaping != "auto" and default_shaping is evosax_shaping.weights_fitness_shaping_fn:
            raise ValueError(f"ESConfig.fitness_shaping: {name} reads shaped fitness as recombination weights; "
                             "use fitness_shaping='auto' with it")
        if "use_antithetic_sampling" in accepted:
            return
        if name in _ALWAYS_ANTITHETIC and not self.antithetic:
            raise ValueError(f"ESConfig.antithetic: {name} always samples antithetic pairs; set antithetic=true")
        if self.antithetic and name not in _ALWAYS_ANTITHETIC and name not in _MIRRORABLE:
            raise ValueError(f"ESConfig.antithetic: {name} does not support antithetic sampling; set antithetic=false")

    @property
    def evosax_name(self) -> str:
        return _STRATEGIES[_canonical(self.strategy)]


def _decay_schedule(init: float, decay: float, floor: float) -> optax.Schedule:
    if decay == 1.0:
        return optax.constant_schedule(init)
    return optax.exponential_decay(init, transition_steps=1, decay_rate=decay, end_value=floor or None)


def replace_nonfinite(fitness: jax.Array) -> tuple[jax.Array, jax.Array]:
    """NaN/inf -> the worst finite value of the generation; returns (fitness, count).

    With no finite value at all every entry becomes 0 (ranks tie, so the ES
    step is null); callers should stop before that (see ``MetaTrainer``).
    """
    fitness = jnp.asarray(fitness, jnp.float32)
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.any(finite), worst, 0.0)
    return jnp.where(finite, fitness, worst), jnp.sum(~finite).astype(jnp.int32)


class EvolutionStrategy:
    """``init / ask / tell`` that maximise ``fitness`` over a pytree of meta-parameters.

    All methods are pure and jittable; ``self`` is static configuration.
    """

    def __init__(self, config: ESConfig, template: Any):
        self.config = config
        flat, self._unravel = flatten_util.ravel_pytree(template)
        self.num_dims = int(flat.size)
        name = config.evosax_name
        cls = distribution_based_algorithms[name]
        accepted = inspect.signature(cls.__init__).parameters
        kwargs: dict[str, Any] = {}

        if "optimizer" in accepted:
            lr = _decay_schedule(config.learning_rate, config.lr_decay, config.lr_min)
            kwargs["optimizer"] = optax.adam(lr, b1=config.adam_b1) if config.optimizer == "adam" else optax.sgd(lr)
        if "std_schedule" in accepted:
            kwargs["std_schedule"] = _decay_schedule(config.sigma, config.sigma_decay, config.sigma_min)

        default_shaping = accepted["fitness_shaping_fn"].default if "fitness_shaping_fn" in accepted else None
        weights_based = default_shaping is evosax_shaping.weights_fitness_shaping_fn
        if config.fitness_shaping == "auto":
            if not weights_based and "optimizer" in accepted:
                kwargs["fitness_shaping_fn"] = _SHAPING["centered_rank"]
        elif weights_based:
            raise ValueError(
                f"{name} reads shaped fitness as recombination weights; use fitness_shaping='auto' with it"
            )
        else:
            kwargs["fitness_shaping_fn"] = _SHAPING[config.fitness_shaping]

        self._mirror = False
        if "use_antithetic_sampling" in accepted:
            kwargs["use_antithetic_sampling"] = config.antithetic
        elif name in _ALWAYS_ANTITHETIC:
            if not config.antithetic:
                raise ValueError(f"{name} always samples antithetic pairs; set antithetic=true")
        elif config.antithetic:
            if name not in _MIRRORABLE:
                raise ValueError(f"{name} does not support antithetic sampling; set antithetic=false")
            self._mirror = True

        self.strategy = cls(config.population_size, jnp.zeros(self.num_dims, jnp.float32), **kwargs)
        params = self.strategy.default_params
        if "std_init" in {f.name for f in dataclasses.fields(params)}:
            params = params.replace(std_init=jnp.asarray(config.sigma, jnp.float32))
        self.params = params

    @property
    def population_size(self) -> int:
        return self.config.population_size

    def ravel(self, tree: Any) -> jax.Array:
        return flatten_util.ravel_pytree(tree)[0]

    def unravel_population(self, flat_population: jax.Array) -> Any:
        return jax.vmap(self._unravel)(flat_population)

    def init(self, key: jax.Array, mean: Any) -> Any:
        flat_mean = self.ravel(mean).astype(jnp.float32)
        if flat_mean.size != self.num_dims:
            raise ValueError(f"initial mean has {flat_mean.size} entries, the template has {self.num_dims}")
        return self.strategy.init(key, flat_mean, self.params)

    def ask(self, key: jax.Array, state: Any) -> tuple[Any, Any]:
        """Returns (population pytree with leading axis population_size, state)."""
        flat, state = self.strategy.ask(key, state, self.params)
        if self._mirror:
            half = self.population_size // 2
            flat = jnp.concatenate([flat[:half], 2.0 * state.mean - flat[:half]])
        return self.unravel_population(flat), state

    def tell(self, key: jax.Array, population: Any, fitness: jax.Array, state: Any) -> tuple[Any, dict]:
        """Update with *maximised* fitness; NaN/inf count as the generation's worst."""
        fitness, num_nonfinite = replace_nonfinite(fitness)
        flat = jax.vmap(self.ravel)(population)
        state, _ = self.strategy.tell(key, flat, _to_evosax(fitness), state, self.params)
        metrics = {
            "fitness_max": jnp.max(fitness),
            "fitness_mean": jnp.mean(fitness),
            "fitness_min": jnp.min(fitness),
            "num_nonfinite": num_nonfinite,
            "sigma_mean": jnp.mean(jnp.asarray(state.std)),
        }
        return state, metrics

    def mean(self, state: Any) -> Any:
        return self._unravel(state.mean)

    def shape_fitness(self, fitness: jax.Array) -> jax.Array:
        """The shaped values evosax will see for these (maximised) fitnesses."""
        fitness, _ = replace_nonfinite(fitness)
        return self.strategy.fitness_shaping_fn(None, _to_evosax(fitness), None, self.params)
