"""The ES meta-training curve: population-mean and best fitness per generation."""

from __future__ import annotations

from pathlib import Path


def plot_meta_curve(history: list[dict], path: Path) -> Path:
    """``meta_log.jsonl`` records -> a PNG; fitness is normalised by the PPO reference (dashed line at 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generations = [r["generation"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(generations, [r["fitness_mean"] for r in history], label="population mean")
    ax.plot(generations, [r["fitness_max"] for r in history], label="population best")
    ax.axhline(1.0, color="gray", ls="--", lw=0.8, label="PPO reference")
    ax.set(xlabel="generation", ylabel="fitness (return / PPO return)", title="ES meta-training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
