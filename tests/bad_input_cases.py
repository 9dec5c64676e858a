"""The bad-input matrix of ``tests/test_bad_input.py``: one row per wrong command line.

A row is ``(profile, args, names, kind)``: ``profile`` picks the console
script and small base settings (``BASE``), ``args`` are the user's overrides,
``names`` is a piece of the one error line that says what is wrong, ``kind``
is the class of bad input (counted in the issue's table). In ``args`` and
``names``, ``{run}`` is a run directory holding ``sentinel.txt``, ``{file}``
that sentinel (a plain file) and ``{files}`` a folder of prepared artifact
files (:func:`write_artifact_files`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

UNKNOWN = "unknown name"
IMPOSSIBLE = "impossible value"
NONFINITE = "NaN / inf"
WRONG_TYPE = "wrong type"
HYDRA = "command-line syntax"
ARTIFACT = "bad artifact file"
UNWRITABLE = "unwritable output"
KINDS = (UNKNOWN, IMPOSSIBLE, NONFINITE, WRONG_TYPE, HYDRA, ARTIFACT, UNWRITABLE)

PROGRAMS = {
    "train": "metarl-train",
    "train_sac": "metarl-train",
    "meta": "metarl-meta-train",
    "meta_lpg": "metarl-meta-train",
    "meta_mg": "metarl-meta-train",
    "evaluate": "metarl-evaluate",
    "evaluate_lpg": "metarl-evaluate",
    "curriculum": "metarl-curriculum",
    "continual": "metarl-continual",
    "reset_free": "metarl-reset-free",
    "meta_rl": "metarl-meta-rl",
}

# Small settings: a row that slips past validation still finishes (the test stops it at the first jit anyway)
_TINY_PPO = ("total_timesteps=256", "num_envs=2", "num_steps=32")
BASE = {
    "train": ("hydra.run.dir={run}", "progress=false", *(f"agent.{s}" for s in _TINY_PPO)),
    # SAC on an env file without a PPO agent block (manipulation): no PPO-only keys to override
    "train_sac": ("hydra.run.dir={run}", "progress=false", "agent=sac", "agent.total_timesteps=256",
                  "agent.num_envs=2", "agent.steps_per_update=8", "agent.gradient_steps=1", "agent.learning_starts=0",
                  "agent.buffer_size=512", "agent.batch_size=8", "agent.eval_every=0"),
    "meta": ("run_dir={run}", "meta.generations=1", "meta.population_size=2", "fitness.num_seeds=1",
             "fitness.reference_seeds=1", "evaluate.enabled=false", "progress_bar=false",
             *(f"inner.{s}" for s in _TINY_PPO)),
    "meta_lpg": ("objective=lpg", "teacher=domain_randomization", "env=gridworld/small", "run_dir={run}",
                 "meta.generations=1", "meta.population_size=2", "objective.lifetime=2", "objective.rule.hidden=4",
                 "objective.agent.num_envs=2", "objective.agent.num_steps=4", "objective.agent.eval_episodes=2",
                 "evaluate.enabled=false", "progress_bar=false"),
    "meta_mg": ("objective=lpg_mg", "run_dir={run}", "objective.meta_steps=2", "objective.chunk=1",
                "objective.num_agents=2", "objective.inner_updates=1", "objective.agent_lifetime=2",
                "progress_bar=false"),
    "evaluate": ("out_dir={run}", "seeds=1", *(f"agent.{s}" for s in _TINY_PPO)),
    "evaluate_lpg": ("artifact={files}/rule.npz", "out_dir={run}", "seeds=1", "levels=[small]", "baselines=[random]",
                     "lifetimes=[2]"),
    "curriculum": ("run_dir={run}", "eval.num_tasks=2", "eval.max_steps=8", *(f"agent.{s}" for s in _TINY_PPO)),
    "continual": ("out_dir={run}", "seeds=1", "reference=false", "progress=false", "benchmark.steps_per_task=256",
                  "eval.episodes=1"),
    "reset_free": ("run_dir={run}", "seeds=1", "scale=ci", "progress=false"),
    "meta_rl": ("task=bandit-k2-dependent-v1", "run_dir={run}", "seeds=1", "scale=ci", "progress=false"),
}


class Case(NamedTuple):
    profile: str
    args: tuple[str, ...]
    names: str
    kind: str

    @property
    def id(self) -> str:
        return f"{self.profile}:{' '.join(self.args)}"


def _cases(profile: str, kind: str, rows: list[tuple[str, str]]) -> list[Case]:
    """``rows`` of ``(space-separated args, names)``."""
    return [Case(profile, tuple(args.split()), names, kind) for args, names in rows]


CASES: list[Case] = [
    # --- metarl-train ---------------------------------------------------------------------------
    *_cases("train", UNKNOWN, [
        ("env.name=CartPol-v1", "CartPole-v1"),
        ("env=cartpol", "did you mean cartpole"),
        ("env=gridworld/dens", "did you mean gridworld/dense"),
        ("optimizer=adamm", "did you mean adam"),
        ("agent=ppo2", "ppo"),
        ("optimizer.name=lionn", "lion"),
        ("agent.activation=relux", "relu"),
        ("agent.action_dist=beta", "agent.action_dist"),
        ("agent.task_resample=never", "agent.task_resample"),
        ("+env.overrides.gravty=3.0", "gravity"),
        ("env=brax/hoper", "did you mean brax/hopper"),
        ("env=brax/hopper env.name=brax-hoper", "did you mean brax-hopper"),
        ("env=brax/hopper env.overrides.backend=springy", "backend must be one of"),
        ("+agent.entcoef=0.1", "ent_coef"),
        ("logger=[csv,tensorbord]", "did you mean tensorboard"),
    ]),
    *_cases("train", IMPOSSIBLE, [
        ("env=acrobot_tasks", "env.task_sets is for metarl-meta-train's LPO/TA-LPO and learned-optimizer jobs"),
        ("seeds=0", "seeds"),
        ("seeds=-2", "seeds"),
        ("seeds=4 seed_block=3", "seed_block=3 must divide seeds=4"),
        ("cpu_devices=0", "cpu_devices must be 'auto' or an integer >= 1"),
        ("agent.num_envs=0", "agent.num_envs"),
        ("agent.num_steps=-5", "agent.num_steps"),
        ("agent.num_minibatches=3", "agent.num_minibatches"),
        ("agent.total_timesteps=10", "agent.total_timesteps"),
        ("agent.gamma=1.5", "agent.gamma"),
        ("agent.gae_lambda=-0.1", "agent.gae_lambda"),
        ("agent.lr=0", "agent.lr"),
        ("agent.clip_eps=-0.2", "agent.clip_eps"),
        ("agent.ent_coef=-1", "agent.ent_coef"),
        ("agent.hidden_sizes=[64,0]", "agent.hidden_sizes"),
        ("agent.update_epochs=0", "agent.update_epochs"),
        ("agent.action_dist=gaussian", "discrete"),
        ("env=brax/hopper +env.overrides.mass_scale=5.0", "brax-hopper: mass_scale=5.0 is outside [0.5, 2.0]"),
        ("env=brax/ant +env.overrides.gravity_scale=0.1", "gravity_scale=0.1 is outside [0.5, 1.5]"),
        ("env=brax/reacher +env.overrides.reward_scale=1", "has no parameter 'reward_scale'"),
        ("agent.reward_scale=0", "agent.reward_scale"),
        ("optimizer=sgd optimizer.learning_rate=-1", "learning_rate"),
    ]),
    *_cases("train", NONFINITE, [
        ("agent.ent_coef=nan", "agent.ent_coef"),
        ("agent.lr=inf", "agent.lr"),
        ("agent.gamma=nan", "agent.gamma"),
        ("agent.vf_coef=-inf", "agent.vf_coef"),
        ("agent.max_grad_norm=nan", "agent.max_grad_norm"),
        ("+env.overrides.gravity=nan", "gravity"),
        ("env=brax/hopper +env.overrides.actuator_scale=nan", "actuator_scale"),
        ("optimizer.eps=nan", "optimizer.eps"),
    ]),
    *_cases("train", WRONG_TYPE, [
        ("agent.anneal_lr=maybe", "agent.anneal_lr"),
        ("agent.normalize_obs=3", "agent.normalize_obs"),
        ("seeds=2.5", "seeds"),
        ("seeds=abc", "seeds"),
        ("agent.num_envs=4.5", "agent.num_envs"),
        ("agent.lr=fast", "agent.lr"),
        ("agent.hidden_sizes=64", "agent.hidden_sizes"),
        ("seed=1.5", "seed"),
        ("progress=maybe", "progress"),
        ("logger=5", "logger must be a list of names"),
        ("agent.clip_value=1", "agent.clip_value"),
    ]),
    *_cases("train", HYDRA, [
        ("agent.foo=1", "+agent.foo"),
        ("teacher=plr", "teacher"),
        ("agent.lr=[1,2", "agent.lr=[1,2"),
        ("=3", "=3"),
        ("agent.lr", "agent.lr"),
    ]),
    *_cases("train", UNWRITABLE, [
        ("hydra.run.dir={file}/sub", "{file}"),
        ("hydra.run.dir={file}", "{file}"),
        ("hydra.run.dir=/sys/metarl-bad-input", "/sys/metarl-bad-input"),
    ]),
    *_cases("train", ARTIFACT, [
        ("optimizer=learned optimizer.load={files}/missing.npz", "missing.npz"),
        ("optimizer=learned optimizer.load={files}/text.npz", "text.npz"),
        ("optimizer=learned optimizer.load={files}/objective.npz", "objective.npz"),
    ]),
    # --- metarl-meta-train: learned objectives and optimizers (PPO inside) -------------------------
    *_cases("meta", UNKNOWN, [
        ("meta=opnes", "did you mean openes"),
        ("evaluate.heldout_envs=[CartPol-v1]", "CartPol-v1"),
        ("+env.task_sets.test=4", "env.task_sets has no key 'test'"),
        ("logger=[csv,wandbb]", "did you mean wandb"),
        ("meta.strategy=OpenESS", "OpenES"),
        ("objective=lpoo", "did you mean lpo"),
        ("env.name=CartPol-v1", "CartPole-v1"),
        ("env.name=[CartPole-v1,Acrobt-v1]", "Acrobot-v1"),
        ("fitness.reduce=median", "fitness.reduce"),
        ("meta.optimizer=adamw", "meta.optimizer"),
        ("meta.fitness_shaping=ranks", "meta.fitness_shaping"),
        ("optimizer=learnd", "did you mean learned"),
        ("evaluate.enabled=true evaluate.baselines=[ppo,dpoo]", "dpoo"),
        ("+meta.sigmaa=0.1", "sigma"),
        ("+inner.activation=relux", "relu"),
    ]),
    *_cases("meta", IMPOSSIBLE, [
        ("meta.population_size=1", "population_size"),
        ("meta.population_size=3", "population_size"),
        ("meta.generations=0", "generations"),
        ("meta.sigma=-0.1", "sigma"),
        ("meta.sigma_decay=1.5", "sigma_decay"),
        ("fitness.final_fraction=1.5", "final_fraction"),
        ("fitness.final_fraction=0", "final_fraction"),
        ("fitness.num_seeds=0", "num_seeds"),
        ("inner.num_minibatches=3", "inner.num_minibatches"),
        ("meta.population_size=4 meta.chunk_size=3", "chunk_size"),
        ("evaluate.enabled=true evaluate.seeds=0", "evaluate.seeds"),
        ("meta.checkpoint_every=0", "checkpoint_every"),
        ("env.task_sets.heldout=0", "env.task_sets.heldout must be an integer >= 1"),
        ("+env.overrides.link_mass_1=1.0", "env.overrides sets 'link_mass_1', a field the task distribution draws"),
        ("env.name=Breakout-MinAtar", "Breakout-MinAtar has no task distribution"),
        ("evaluate.heldout_envs=[Acrobot-v1]", "Acrobot-v1 is a meta-training env, not a held-out one"),
    ]),
    *_cases("meta", NONFINITE, [
        ("meta.sigma=nan", "sigma"),
        ("meta.learning_rate=inf", "learning_rate"),
        ("inner.ent_coef=nan", "inner.ent_coef"),
        ("fitness.final_fraction=nan", "final_fraction"),
        ("meta.adam_b1=nan", "adam_b1"),
    ]),
    *_cases("meta", WRONG_TYPE, [
        ("meta.antithetic=maybe", "antithetic"),
        ("meta.population_size=2.5", "population_size"),
        ("resume=maybe", "resume must be true or false"),
        ("seed=abc", "seed"),
        ("evaluate.enabled=maybe", "evaluate.enabled"),
        ("progress_bar=2", "progress_bar"),
        ("meta.shard=maybe", "shard"),
        ("meta.devices=0", "devices must be >= 1"),
        ("cpu_devices=0", "cpu_devices must be 'auto' or an integer >= 1"),
        ("cpu_devices=many", "cpu_devices must be 'auto'"),
        ("distributed.num_processes=2 distributed.process_id=2 distributed.coordinator=h:1",
         "distributed.process_id=2 is out of range"),
        ("distributed.num_processes=2", "needs distributed.coordinator"),
    ]),
    *_cases("meta", HYDRA, [
        ("meta.foo=1", "+meta.foo"),
        ("objective.name=[lpo", "objective.name=[lpo"),
    ]),
    *_cases("meta", UNWRITABLE, [
        ("run_dir={file}/sub", "{file}"),
    ]),
    *_cases("meta", ARTIFACT, [
        ("objective=ppo optimizer=learned optimizer.load={files}/text.npz", "text.npz"),
        ("objective=ppo optimizer=learned optimizer.load={files}/truncated.npz", "truncated.npz"),
    ]),
    # --- metarl-meta-train objective=lpg (ES) and objective=lpg_mg (meta-gradients) ----------------
    *_cases("meta_lpg", UNKNOWN, [
        ("teacher=grove", "did you mean groove"),
        ("objective.fitness=rank", "objective.fitness"),
        ("objective.rule.cell=rnn", "objective.rule.cell"),
        ("objective.agent.kind=deep", "objective.agent.kind"),
        ("env=gridworld/smal", "did you mean gridworld/small"),
    ]),
    *_cases("meta_lpg", IMPOSSIBLE, [
        ("env=acrobot_tasks", "this job samples tasks through its teacher"),
        ("objective.lifetime=0", "objective.lifetime"),
        ("objective.lifetime_min=100", "objective.lifetime_min"),
        ("objective.rule.hidden=0", "objective.rule.hidden"),
        ("objective.agent.gamma=2", "objective.agent.gamma"),
        ("meta.population_size=3", "population_size"),
        ("meta.antithetic=false", "antithetic"),
    ]),
    *_cases("meta_lpg", NONFINITE, [
        ("objective.agent.actor_lr=nan", "objective.agent.actor_lr"),
        ("+objective.rule.max_log_lifetime=inf", "objective.rule.max_log_lifetime"),
    ]),
    *_cases("meta_lpg", WRONG_TYPE, [
        ("objective.agent.num_envs=2.5", "objective.agent.num_envs"),
        ("+objective.rule.time_aware=maybe", "objective.rule.time_aware"),
    ]),
    *_cases("meta_mg", UNKNOWN, [
        ("objective.teacher=grooves", "groove"),
        ("objective.level=tiny", "objective.level"),
    ]),
    *_cases("meta_mg", IMPOSSIBLE, [
        ("objective.meta_steps=0", "objective.meta_steps"),
        ("objective.regularisers=[1,2]", "objective.regularisers"),
        ("+objective.time_limit_s=-1", "objective.time_limit_s"),
    ]),
    *_cases("meta_mg", NONFINITE, [
        ("objective.meta_lr=nan", "objective.meta_lr"),
    ]),
    *_cases("meta_mg", WRONG_TYPE, [
        ("objective.chunk=2.5", "objective.chunk"),
    ]),
    # --- metarl-evaluate: objectives and optimizers ------------------------------------------------
    *_cases("evaluate", ARTIFACT, [
        ("artifact={files}/missing.npz", "missing.npz"),
        ("artifact={files}/text.npz", "text.npz"),
        ("artifact={files}/empty.npz", "empty.npz"),
        ("artifact={files}/truncated.npz", "truncated.npz"),
        ("artifact={files}/noheader.npz", "noheader.npz"),
        ("artifact={files}/array.npy", "array.npy"),
        ("artifact={files}/badheader.json", "badheader.json"),
        ("artifact={files}/empty_dir", "empty_dir"),
        ("artifact={files}/two_artifacts", "two_artifacts"),
        ("artifact={files}/banana.npz", "banana"),
        ("compare=[{files}/text.npz]", "text.npz"),
        ("objective={files}/text.npz", "text.npz"),
        ("artifact={files}/objective.npz optimizer={files}/rule.npz", "rule.npz"),
    ]),
    *_cases("evaluate", UNKNOWN, [
        ("compare=[ppo,dpoo]", "dpo"),
        ("logger=[csv,mlflow]", "unknown logger 'mlflow'"),
        ("objective=dpoo", "dpo"),
        ("optimizer=adamm", "adam"),
        ("compare_optimizers=[lionn]", "lion"),
        ("env=CartPol-v1", "CartPole-v1"),
        ("env=[CartPole-v1,Acrobt-v1]", "Acrobot-v1"),
        ("agent.activation=relux", "relu"),
        ("+agent.lrr=1", "agent.lr"),
    ]),
    *_cases("evaluate", IMPOSSIBLE, [
        ("seeds=0", "seeds"),
        ("final_fraction=0", "final_fraction"),
        ("final_fraction=1.5", "final_fraction"),
        ("agent.num_minibatches=3", "agent.num_minibatches"),
        ("optimizer=adam@-1", "adam@-1"),
    ]),
    *_cases("evaluate", NONFINITE, [
        ("final_fraction=nan", "final_fraction"),
        ("agent.lr=nan", "agent.lr"),
        ("seed=nan", "seed"),
        ("optimizer=adam@nan", "adam@nan"),
    ]),
    *_cases("evaluate", WRONG_TYPE, [
        ("seeds=2.5", "seeds"),
        ("agent.anneal_lr=maybe", "agent.anneal_lr"),
        ("optimizer=adam@fast", "adam@fast"),
        ("final_fraction=half", "final_fraction"),
    ]),
    *_cases("evaluate", HYDRA, [
        ("lifetimes=[3]", "lifetimes"),
        ("+agent.foo", "+agent.foo"),
    ]),
    *_cases("evaluate", UNWRITABLE, [
        ("out_dir={file}/sub", "{file}"),
        ("out_dir=/sys/metarl-bad-input", "/sys/metarl-bad-input"),
    ]),
    # --- metarl-evaluate: LPG rules ------------------------------------------------------------------
    *_cases("evaluate_lpg", UNKNOWN, [
        ("levels=[dense,nosuch]", "nosuch"),
        ("baselines=[a2c,ppoo]", "ppo"),
        ("minatar=[Breakout-MinAtr]", "Breakout-MinAtar"),
        ("+ppo.foo=1", "ppo.foo"),
    ]),
    *_cases("evaluate_lpg", IMPOSSIBLE, [
        ("lifetimes=[0]", "lifetimes"),
        ("minatar_updates=0", "minatar_updates"),
        ("seeds=0", "seeds"),
    ]),
    *_cases("evaluate_lpg", NONFINITE, [
        ("+ppo.lr=nan", "ppo.lr"),
    ]),
    *_cases("evaluate_lpg", WRONG_TYPE, [
        ("lifetimes=[2.5]", "lifetimes"),
        ("levels=small", "levels"),
    ]),
    *_cases("evaluate_lpg", ARTIFACT, [
        ("compare=[{files}/missing.npz]", "missing.npz"),
        ("compare=[{files}/objective.npz]", "objective.npz"),
    ]),
    *_cases("evaluate_lpg", HYDRA, [
        ("env=CartPole-v1", "env"),
    ]),
    # --- metarl-curriculum ---------------------------------------------------------------------------
    *_cases("curriculum", UNKNOWN, [
        ("teacher=plrr", "did you mean plr"),
        ("logger=[tensorbord]", "did you mean tensorboard"),
        ("env=mazee", "did you mean maze"),
        ("teacher.name=plrr", "plr"),
        ("eval.set=nammed", "named"),
        ("eval.set=named", "maze"),
        ("teacher=plr teacher.prioritization=ranks", "prioritization"),
        ("teacher=plr +teacher.foo=1", "teacher.foo"),
        ("agent.teacher_score=gae", "gae_abs"),
        ("env=maze teacher=accel teacher.mutate.name=flip", "flip"),
    ]),
    *_cases("curriculum", IMPOSSIBLE, [
        ("eval.num_tasks=0", "eval.num_tasks"),
        ("eval.max_steps=-1", "eval.max_steps"),
        ("teacher=plr teacher.replay_prob=1.5", "teacher.replay_prob"),
        ("teacher=plr teacher.capacity=0", "teacher.capacity"),
        ("teacher=alp_gmm teacher.random_task_ratio=2", "teacher.random_task_ratio"),
        ("agent.num_envs=0", "agent.num_envs"),
    ]),
    *_cases("curriculum", NONFINITE, [
        ("eval.num_tasks=nan", "eval.num_tasks"),
        ("teacher=plr teacher.temperature=nan", "teacher.temperature"),
        ("agent.ent_coef=inf", "agent.ent_coef"),
    ]),
    *_cases("curriculum", WRONG_TYPE, [
        ("seed=abc", "seed"),
        ("teacher=plr teacher.duplicate_check=maybe", "teacher.duplicate_check"),
        ("eval.max_steps=8.5", "eval.max_steps"),
    ]),
    *_cases("curriculum", HYDRA, [
        ("eval.foo=1", "eval.foo"),
        ("env=", "env"),
    ]),
    *_cases("curriculum", UNWRITABLE, [
        ("run_dir={file}/sub", "{file}"),
    ]),
    # --- metarl-continual ----------------------------------------------------------------------------
    *_cases("continual", UNKNOWN, [
        ("benchmark=ccartpole", "did you mean ccartpole5"),
        ("logger=[csv,tb]", "unknown logger 'tb'"),
        ("method=ewcc", "did you mean ewc"),
        ("method.name=ewcc", "ewc"),
        ("benchmark.stream=CCartPole5", "CCartPole5-v1"),
        ("method=reset method.reset_which=some", "method.reset_which"),
        ("benchmark=cw10 method=l2_init", "method=l2_init is not available with SAC"),
        ("benchmark=cw10 benchmark.switch.heads=two", "switch.heads"),
        ("benchmark=cw10 benchmark.algorithm=dqn", "benchmark.algorithm"),
    ]),
    *_cases("continual", IMPOSSIBLE, [
        ("seeds=0", "seeds"),
        ("benchmark.steps_per_task=0", "steps_per_task"),
        ("method=ewc method.ewc_coef=-1", "method.ewc_coef"),
        ("method=shrink_perturb method.shrink=1.5", "method.shrink"),
        ("method=replay method.replay_batch=0", "method.replay_batch"),
        ("method=cbp method.cbp_decay=1", "method.cbp_decay"),
        ("eval.episodes=0", "eval.episodes"),
        ("+agent.gamma=1.5", "agent.gamma"),
        ("benchmark=cw10 +agent.task_heads=-1", "agent.task_heads"),
        ("switch.heads=multi", "switch settings apply to SAC benchmarks only"),
        ("multitask=true", "multitask=true"),
        ("checkpoint_every=2", "checkpoint_every applies to SAC streams"),
        ("benchmark=cw10 checkpoint_every=-1", "checkpoint_every must be >= 0"),
        ("benchmark=cw10 resume=true", "resume=true needs checkpoint_every > 0"),
    ]),
    *_cases("continual", NONFINITE, [
        ("benchmark.steps_per_task=nan", "steps_per_task"),
        ("method=ewc method.ewc_coef=nan", "method.ewc_coef"),
        ("method=redo method.redo_tau=inf", "method.redo_tau"),
    ]),
    *_cases("continual", WRONG_TYPE, [
        ("seeds=2.5", "seeds"),
        ("eval.greedy=maybe", "eval.greedy"),
        ("reference=maybe", "reference"),
        ("method=reset method.at_switch=maybe", "method.at_switch"),
        ("benchmark=cw10 switch.reset_buffer=maybe", "switch.reset_buffer"),
        ("benchmark=cw10 multitask=maybe", "multitask"),
        ("benchmark=cw10 checkpoint_every=1.5", "checkpoint_every"),
    ]),
    *_cases("continual", HYDRA, [
        ("method.foo=1", "+method.foo"),
        ("benchmark=[a,b]", "benchmark"),
    ]),
    *_cases("continual", UNWRITABLE, [
        ("out_dir={file}/sub", "{file}"),
    ]),
    # --- metarl-reset-free ---------------------------------------------------------------------------
    *_cases("reset_free", UNKNOWN, [
        ("task=four-rooms", "did you mean four-rooms-v1"),
        ("algorithm=riscc", "risc"),
        ("bootstrap=timeout", "timeout_as_terminal"),
        ("logger=[csv,tb]", "unknown logger 'tb'"),
    ]),
    *_cases("reset_free", IMPOSSIBLE, [
        ("seeds=0", "seeds"),
        ("protocol.steps_per_intervention=0", "protocol.steps_per_intervention must be positive"),
        ("protocol.steps_per_intervention=-5", "steps_per_intervention"),
        ("protocol.eval_every=3000", "not a multiple of eval_every=3000"),
        ("protocol.conservative_factor=1.5", "protocol.conservative_factor"),
        ("critic.lr=-1", "critic.lr"),
        ("goal_conditioned=false", "algorithm=risc switches between forward and backward goals"),
        ("+agent.gamma=1.5", "agent.gamma"),
        ("+agent.learning_starts=4000", "agent.learning_starts=4000 is not below the run's total_steps=4000"),
        ("+agent.batch_size=5000", "agent.batch_size=5000 is larger than the replay buffer"),
        ("scale=tiny", "scale"),
        ("protocol.demos=2", "demos=2: earl-four-rooms has no scripted demonstrator"),
        ("protocol.demos=-1", "protocol.demos"),
    ]),
    *_cases("reset_free", NONFINITE, [
        ("protocol.conservative_factor=nan", "conservative_factor"),
        ("critic.lr=inf", "critic.lr"),
        ("critic.tau=nan", "critic.tau"),
    ]),
    *_cases("reset_free", WRONG_TYPE, [
        ("seeds=2.5", "seeds"),
        ("goal_conditioned=maybe", "goal_conditioned"),
        ("protocol.total_steps=many", "total_steps"),
    ]),
    *_cases("reset_free", HYDRA, [
        ("protocol.foo=1", "protocol.foo"),
        ("task=[a,b]", "task"),
    ]),
    *_cases("reset_free", UNWRITABLE, [
        ("run_dir={file}/sub", "{file}"),
    ]),
    # --- metarl-meta-rl ------------------------------------------------------------------------------
    *_cases("meta_rl", UNKNOWN, [
        ("task=dark-room", "did you mean dark-room-v1"),
        ("+agent.cel=lstm", "agent.cel is not a setting (did you mean cell?)"),
        ("eval.baselines=[ucb]", "did you mean ucb1"),
        ("teacher=plrr", "did you mean plr"),
    ]),
    *_cases("meta_rl", IMPOSSIBLE, [
        ("seeds=0", "seeds"),
        ("chunk_trials=7", "agent.num_trials=40 is not a multiple of chunk_trials=7"),
        ("+agent.bptt_chunk=3", "bptt_chunk=3 does not divide the trial length"),
        ("task=dark-room-v1 eval.tasks=5", "dark-room-v1 holds out a fixed split of 16 goals"),
        ("task=dark-room-v1 teacher=alp_gmm", "teacher=alp_gmm proposes tasks anywhere in dark-room-v1's TaskSpace"),
        ("+agent.gamma=1.5", "agent.gamma"),
        ("+agent.cell=transformer +agent.num_heads=3", "agent.num_heads=3 does not divide agent.hidden_size=16"),
        ("eval.scratch_ppo=true", "eval.scratch_ppo=true: bandit-k2-dependent-v1's trial is one episode"),
        ("task=ml1-push-v1 eval.baselines=[ucb1]", "ml1-push-v1 is scored against its success rates"),
    ]),
    *_cases("meta_rl", NONFINITE, [
        ("+agent.lr=nan", "agent.lr"),
    ]),
    *_cases("meta_rl", WRONG_TYPE, [
        ("eval.greedy=maybe", "eval.greedy"),
        ("task=ml1-reach-v1 eval.scratch_ppo=maybe", "eval.scratch_ppo"),
        ("+agent.hidden_size=big", "agent.hidden_size"),
    ]),
    *_cases("meta_rl", HYDRA, [
        ("eval.foo=1", "eval.foo"),
        ("task=[a,b]", "task"),
    ]),
    *_cases("meta_rl", UNWRITABLE, [
        ("run_dir={file}/sub", "{file}"),
    ]),
    # --- metarl-train agent=sac (env files with an agent block: the base's PPO-only agent.num_steps
    # exists there, and SAC drops it) -----------------------------------------------------------------
    *_cases("train", IMPOSSIBLE, [
        ("agent=sac env=bandit", "agent.name=sac needs a continuous (Box) action space"),
        ("agent=sac env=pendulum agent.batch_size=512 agent.buffer_size=256", "agent.batch_size=512"),
        ("agent=sac env=pendulum agent.learning_starts=1e6", "agent.learning_starts"),
    ]),
    *_cases("train", NONFINITE, [
        ("agent=sac env=pendulum agent.lr=nan", "agent.lr"),
    ]),
    *_cases("train", UNKNOWN, [
        ("agent=sac env=pendulum agent.name=sacc", "unknown agent 'sacc'"),
        ("agent=sac env=pendulum optimizer=sgd", "agent=sac uses its own Adam"),
    ]),
    # --- the manipulation family (the task is env.name; task sets through env.tasks) ------------------
    *_cases("train_sac", UNKNOWN, [
        ("env=manipulation env.name=rech-v3", "unknown environment 'rech-v3'; did you mean reach-v3"),
        ("env=manipulation env.tasks=MT7:train", "unknown benchmark 'MT7'"),
        ("env=manipulation env.eval_tasks=MT1:pussh-v3:test", "unknown manipulation task 'pussh-v3'"),
    ]),
    *_cases("train_sac", IMPOSSIBLE, [
        ("env=manipulation +env.overrides.goal=[5,5,5]", "goal=[5.0, 5.0, 5.0] is outside reach-v3's range"),
        ("env=manipulation env.tasks=MT1:push-v3:train", "task_id=1 is not a task of this env"),
        ("env=manipulation +env.overrides.max_steps=0", "max_steps must be >= 1"),
    ]),
]


def write_artifact_files(folder: Path) -> None:
    """Good and bad artifact files for the rows: ``text.npz``, ``truncated.npz``, ``rule.npz``, ..."""
    import jax

    from metarl.io.artifacts import save_artifact
    from metarl.lpg.agents import AgentConfig
    from metarl.lpg.artifact import save_rule
    from metarl.lpg.rule import LPGConfig, LPGRule
    from metarl.objectives import make_objective
    from metarl.objectives.io import save_objective

    folder.mkdir(parents=True, exist_ok=True)
    objective = make_objective("lpo")
    good = save_objective(folder / "objective.npz", objective, objective.init(jax.random.PRNGKey(0)))
    rule = LPGRule(LPGConfig(hidden=4, pred_dim=2, embed_hidden=2))
    save_rule(folder / "rule.npz", rule, AgentConfig(num_envs=2, num_steps=4, eval_episodes=2),
              rule.init(jax.random.PRNGKey(0)))
    (folder / "text.npz").write_text("lr: 0.1\nthis is a note, not an artifact\n")
    (folder / "empty.npz").write_bytes(b"")
    data = good.read_bytes()
    (folder / "truncated.npz").write_bytes(data[: len(data) // 2])
    np.savez(folder / "noheader.npz", w=np.zeros(3))
    np.save(folder / "array.npy", np.zeros(3))
    (folder / "badheader.json").write_text(json.dumps({"hello": "world"}))
    (folder / "empty_dir").mkdir(exist_ok=True)
    (folder / "two_artifacts").mkdir(exist_ok=True)
    for name in ("learned_objective.npz", "learned_optimizer.npz"):
        (folder / "two_artifacts" / name).write_bytes(data)
    save_artifact(folder / "banana.npz", {"w": np.zeros(2)}, kind="banana", name="banana")
