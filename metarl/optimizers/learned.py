"""OPEN-style learned optimizer as an optax ``GradientTransformationExtraArgs``.

Per parameter, a GRU + MLP reads the features of :mod:`features` and emits
``(m, e, s)``; the step is (λ1 = ``step_mult``, λ2 = ``exp_mult``)

    u = λ1·m·exp(λ2·e) + [``noise_on`` leaves] λ1·s·ε,   ε ~ N(0, 1)
    u ← u − mean(u)                 (over all parameters; ``subtract_mean``)
    u ← u + λ1·grad_scale·g         (direct gradient path, not in OPEN)
    p ← p − u                        (the optax update is −u)

The direct-gradient scalar ``grad_scale`` is a meta-parameter added so the
rule can express SGD exactly: OPEN's ``m·exp(e)`` cannot output ``lr·g``, and
mean subtraction would move it off SGD anyway. With the network zeroed and
``grad_scale = lr/λ1`` the step is exactly ``lr·g`` (see
:meth:`LearnedOptimizer.sgd_meta_params`); with ``grad_scale = 0`` the rule is
OPEN. Meta-parameters live outside the optax state, so ES can vmap over a
population: ``jax.vmap(lambda mp: opt.transform(mp).update(...))``.
``noise_on`` names path components (default ``actor`` and ``log_std``, PPO's
actor leaves); the inputs are those of OPEN (19 with its six momenta), see
:mod:`metarl.optimizers.features`.

Extra args (all optional, so it also runs in a plain optax loop):
``progress`` (training proportion; default ``count / horizon`` when
``horizon > 0``, else 0), ``epoch_progress`` (default 0), ``key`` (default a
fixed key folded with the step count), ``dormancy`` (pytree mirroring params,
one ``(out,)`` vector per leaf; default ones).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metarl.optimizers import features as F
from metarl.optimizers.network import PerParameterNetwork

OPEN_BETAS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
META_INITS = ("zeros", "network")


@dataclasses.dataclass(frozen=True)
class OPENConfig:
    betas: tuple[float, ...] = OPEN_BETAS
    gru_features: int = 8
    hidden_size: int = 16
    step_mult: float = 1e-3  # λ1
    exp_mult: float = 1e-3  # λ2
    noise_on: tuple[str, ...] = ("actor", "log_std")  # path components of leaves with learned noise
    subtract_mean: bool = True
    horizon: int = 0  # optimizer steps in a lifetime; only for the default ``progress``
    meta_init: str = "zeros"  # OPEN starts ES from zeros
    init_grad_scale: float = 0.0  # direct-gradient coefficient (in units of λ1) at init
    seed: int = 0  # for the default noise key

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if isinstance(self.noise_on, str):
            raise ValueError(f"noise_on must be a list of path components, got the string {self.noise_on!r}")
        object.__setattr__(self, "noise_on", tuple(str(n) for n in (self.noise_on or ())))
        if not self.betas or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be a non-empty list in [0, 1), got {self.betas}")
        if self.gru_features < 1 or self.hidden_size < 1:
            raise ValueError("gru_features and hidden_size must be positive")
        if self.step_mult <= 0:
            raise ValueError(f"step_mult must be positive, got {self.step_mult}")
        if self.horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {self.horizon}")
        if self.meta_init not in META_INITS:
            raise ValueError(f"meta_init must be one of {META_INITS}, got {self.meta_init!r}")


class LearnedOptimizerState(NamedTuple):
    count: jax.Array  # int32 steps taken
    momenta: Any  # per leaf: param.shape + (n_betas,)
    carry: Any  # per leaf: param.shape + (gru_features,)


def _as_f32(x: Any) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _flat(leaves: list[jax.Array]) -> jax.Array:
    """Concatenate leaves into one vector."""
    return jnp.concatenate([x.reshape(-1) for x in leaves])


def _rows(leaves: list[jax.Array]) -> jax.Array:
    """Concatenate ``param.shape + (k,)`` leaves into ``[N, k]`` rows."""
    return jnp.concatenate([x.reshape(-1, x.shape[-1]) for x in leaves])


def _split(flat: jax.Array, like: list[jax.Array]) -> list[jax.Array]:
    """Inverse of :func:`_flat` / :func:`_rows`: cut ``flat`` into the shapes of ``like``."""
    out, offset = [], 0
    for x in like:
        rows = x.size // (x.shape[-1] if flat.ndim == 2 else 1)
        out.append(flat[offset : offset + rows].reshape(x.shape))
        offset += rows
    return out


class LearnedOptimizer:
    """OPEN-style learned optimizer; ``transform(meta_params)`` is the optax object."""

    name = "open"

    def __init__(self, config: OPENConfig | None = None, **overrides: Any):
        base = config or OPENConfig()
        try:
            self.options = dataclasses.replace(base, **overrides)
        except TypeError as err:
            raise ValueError(f"bad learned optimizer option: {err}") from None
        self.network = PerParameterNetwork(self.options.gru_features, self.options.hidden_size)

    # --- description -----------------------------------------------------------------
    @property
    def config(self) -> dict:
        """JSON-serialisable settings; ``LearnedOptimizer.from_config`` inverts it."""
        cfg = dataclasses.asdict(self.options)
        cfg["betas"] = list(cfg["betas"])
        cfg["noise_on"] = list(cfg["noise_on"])
        return {"name": self.name, **cfg}

    @classmethod
    def from_config(cls, config: dict) -> "LearnedOptimizer":
        config = dict(config)
        name = config.pop("name", cls.name)
        if name != cls.name:
            raise ValueError(f"config is for optimizer {name!r}, not {cls.name!r}")
        return cls(**config)

    @property
    def num_features(self) -> int:
        return F.num_features(len(self.options.betas))

    # --- meta-parameters ---------------------------------------------------------------
    def init_meta(self, key: jax.Array) -> dict:
        """Meta-parameters: ``{"network": flax params, "grad_scale": scalar}``."""
        opts = self.options
        if opts.meta_init == "zeros":  # shapes only: no flax init to run or compile
            net = self._zero_network()
        else:
            net = jax.jit(self._network_init)(key)
        return {"network": net, "grad_scale": _as_f32(opts.init_grad_scale)}

    def _network_shapes(self) -> dict:
        carry = jnp.zeros((self.options.gru_features,), jnp.float32)
        inputs = jnp.zeros((self.num_features,), jnp.float32)
        return jax.eval_shape(self.network.init, jax.random.PRNGKey(0), carry, inputs)["params"]

    def _network_init(self, key: jax.Array) -> dict:
        """Fan-in variance-scaling kernels, zero biases, unit LayerNorm scales.

        Cheaper to compile than flax's own initialisers (orthogonal GRU
        kernels need a QR decomposition), which matters inside ES loops.
        """
        leaves, treedef = jax.tree_util.tree_flatten_with_path(self._network_shapes())
        # one normal draw sliced into kernels: a draw per kernel compiles far slower
        noise = jax.random.normal(key, (sum(int(np.prod(s.shape)) for _, s in leaves),), jnp.float32)
        values, offset = [], 0
        for path, s in leaves:
            kind = path[-1].key
            if kind == "kernel":
                size = int(np.prod(s.shape))
                values.append(noise[offset : offset + size].reshape(s.shape) / np.sqrt(s.shape[0]))
                offset += size
            else:  # LayerNorm scales start at 1, biases at 0
                values.append(jnp.full(s.shape, 1.0 if kind == "scale" else 0.0, jnp.float32))
        return jax.tree_util.tree_unflatten(treedef, values)

    def _zero_network(self) -> dict:
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), self._network_shapes())

    def init(self, key: jax.Array) -> dict:
        """Alias of :meth:`init_meta` (PPO and the ES code call ``init(key)``)."""
        return self.init_meta(key)

    def sgd_meta_params(self, learning_rate: float) -> dict:
        """Meta-parameters for which the update is exactly ``optax.sgd(learning_rate)``.

        Zero network (so ``m = e = s = 0``) and ``grad_scale`` chosen so that
        ``float32(λ1) * grad_scale == float32(learning_rate)`` bit for bit.
        """
        step = np.float32(self.options.step_mult)
        target = np.float32(learning_rate)
        scale = np.float32(target / step)
        for _ in range(64):  # walk one ulp at a time towards an exact product
            product = np.float32(step * scale)
            if product == target:
                break
            scale = np.nextafter(scale, np.float32(np.inf) if product < target else np.float32(-np.inf))
        else:
            raise ValueError(f"cannot represent learning rate {learning_rate} exactly with step_mult {step}")
        return {"network": self._zero_network(), "grad_scale": jnp.asarray(scale, jnp.float32)}

    # --- the optax transformation ------------------------------------------------------
    def transform(self, meta_params: dict) -> optax.GradientTransformationExtraArgs:
        opts = self.options
        betas = jnp.asarray(opts.betas, jnp.float32)
        n_betas = len(opts.betas)
        network = self.network
        net_params = {"params": meta_params["network"]}
        direct_step = jnp.float32(opts.step_mult) * _as_f32(meta_params["grad_scale"])

        @jax.jit  # one compiled call instead of one per leaf shape when run eagerly
        def init_fn(params):
            momenta = jax.tree_util.tree_map(lambda p: jnp.zeros(jnp.shape(p) + (n_betas,), jnp.float32), params)
            carry = jax.tree_util.tree_map(
                lambda p: jnp.zeros(jnp.shape(p) + (opts.gru_features,), jnp.float32), params
            )
            return LearnedOptimizerState(jnp.zeros((), jnp.int32), momenta, carry)

        def update_fn(grads, state, params=None, *, progress=None, epoch_progress=None, key=None, dormancy=None, **_):
            if params is None:
                raise ValueError("the learned optimizer needs params: call update(grads, state, params)")
            treedef = jax.tree_util.tree_structure(params)
            if treedef.num_leaves == 0:
                return grads, state._replace(count=state.count + 1)
            p_leaves = [_as_f32(p) for p in treedef.flatten_up_to(params)]
            g_leaves = [_as_f32(g) for g in treedef.flatten_up_to(grads)]
            m_leaves = treedef.flatten_up_to(state.momenta)
            c_leaves = treedef.flatten_up_to(state.carry)
            if dormancy is None:
                d_leaves = [jnp.ones((), jnp.float32)] * len(p_leaves)
            else:
                d_leaves = treedef.flatten_up_to(dormancy)
            layer_props = F.layer_proportions(params)
            noisy = F.noise_mask(params, opts.noise_on)

            if progress is None:
                progress = state.count / opts.horizon if opts.horizon > 0 else 0.0
            progress = jnp.clip(_as_f32(progress), 0.0, 1.0)
            epoch_progress = _as_f32(0.0 if epoch_progress is None else epoch_progress)
            if key is None:
                key = jax.random.fold_in(jax.random.PRNGKey(opts.seed), state.count)

            # Everything below works on all parameters flattened into rows, so
            # the compiled size does not grow with the number of leaves.
            sizes = [p.size for p in p_leaves]
            segment_ids = np.repeat(np.arange(len(sizes)), sizes)
            g_flat = _flat(g_leaves)
            momenta = F.update_momenta(_rows(m_leaves), g_flat, betas)
            inputs = F.parameter_features(
                _flat(p_leaves), g_flat, momenta,
                segment_ids=segment_ids, num_segments=len(sizes),
                progress=progress, epoch_progress=epoch_progress,
                layer_proportion=np.repeat(np.asarray(layer_props, np.float32), sizes),
                dormancy=_flat([F.broadcast_dormancy(d, p.shape) for d, p in zip(d_leaves, p_leaves)]),
            )
            carry, out = network.apply(net_params, _rows(c_leaves), inputs)
            step = out[:, 0] * opts.step_mult * jnp.exp(out[:, 1] * opts.exp_mult)
            if any(noisy):
                mask = np.repeat(np.asarray(noisy, np.float32), sizes)
                step = step + out[:, 2] * opts.step_mult * jax.random.normal(key, step.shape) * mask
            if opts.subtract_mean:
                step = step - jnp.mean(step)
            step = step + g_flat * direct_step

            updates = [-u for u in _split(step, p_leaves)]
            new_carry = _split(carry, c_leaves)
            new_momenta = _split(momenta, m_leaves)
            new_state = LearnedOptimizerState(
                state.count + 1, treedef.unflatten(new_momenta), treedef.unflatten(new_carry)
            )
            return treedef.unflatten(updates), new_state

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)
