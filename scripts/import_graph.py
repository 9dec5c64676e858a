"""Module import graph of metarl, envs and curricula (static, from the source).

Prints counts of modules, edges, circles and upward edges between layers, and can
write a Graphviz-free PNG of the package-level graph for docs/architecture.md.

    python scripts/import_graph.py [--png docs/figures/import_graph.png] [--json out.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("metarl", "envs", "curricula")

# Lower number = lower layer. A module may import only its own layer or lower.
LAYERS = [
    ("metarl.cli", 6),
    ("metarl.jobs", 5),
    ("metarl.meta", 4),
    ("metarl.continual", 4),
    ("metarl.lpg", 4),
    ("metarl.eval", 4),
    ("metarl.agents", 3),
    ("metarl.objectives", 3),
    ("metarl.optimizers", 3),
    ("curricula", 2),
    ("envs", 1),
    ("metarl.stats", 0),
    ("metarl.io", 0),
    ("metarl.config", 0),
    ("metarl.runtime", 0),
]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def collect() -> dict[str, set[str]]:
    modules = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            modules[module_name(path)] = path
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg_parts = pkg_parts[: len(pkg_parts) - (node.level - 1)]
                    base = ".".join(pkg_parts + ([base] if base else []))
                # ``from pkg import submodule`` depends on the submodule (as import-linter reads it)
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in modules]
                if len(targets) < len(subs):
                    targets.append(base)
            for t in targets:
                # resolve to the longest known module prefix
                parts = t.split(".")
                while parts and ".".join(parts) not in modules:
                    parts.pop()
                if parts:
                    dep = ".".join(parts)
                    if dep != mod:
                        graph[mod].add(dep)
    return graph


def layer_of(mod: str) -> int | None:
    for prefix, rank in LAYERS:
        if mod == prefix or mod.startswith(prefix + "."):
            return rank
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def summary(graph):
    edges = [(a, b) for a, deps in graph.items() for b in deps]
    # package __init__ re-exports are not layer violations of their own package
    upward = [
        (a, b)
        for a, b in edges
        if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)
    ]
    loc = sum(
        len(p.read_text().splitlines()) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
    )
    return {
        "modules": len(graph),
        "edges": len(edges),
        "upward_edges": sorted(upward),
        "unlayered_modules": sorted(m for m in graph if layer_of(m) is None),
        "circles": cycles(graph),
        "lines_of_code": loc,
    }


def package_of(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2]) if parts[0] == "metarl" and len(parts) > 1 else parts[0]


def draw(graph, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pkg_edges = {}
    for a, deps in graph.items():
        for b in deps:
            pa, pb = package_of(a), package_of(b)
            if pa != pb:
                pkg_edges[(pa, pb)] = pkg_edges.get((pa, pb), 0) + 1
    pkgs = sorted({package_of(m) for m in graph if m != "metarl"})  # the root package holds only a version
    rows: dict[int, list[str]] = {}
    for p in pkgs:
        rows.setdefault(layer_of(p) if layer_of(p) is not None else -1, []).append(p)
    pos = {}
    for y, (rank, names) in enumerate(sorted(rows.items(), reverse=True)):
        for x, name in enumerate(names):
            pos[name] = ((x + 1) / (len(names) + 1), -y)
    fig, ax = plt.subplots(figsize=(11, 7))
    for (a, b), n in pkg_edges.items():
        if a not in pos or b not in pos:
            continue
        (x0, y0), (x1, y1) = pos[a], pos[b]
        up = (layer_of(b) or 0) > (layer_of(a) or 0)
        ax.annotate(
            "", xy=(x1, y1), xytext=(x0, y0),
            arrowprops=dict(arrowstyle="->", color="red" if up else "0.6", lw=0.5 + 0.2 * n,
                            shrinkA=12, shrinkB=12, connectionstyle="arc3,rad=0.08"),
        )
    for name, (x, y) in pos.items():
        ax.text(x, y, name, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round", fc="white", ec="0.3"))
    ax.set_xlim(0, 1)
    ax.set_ylim(-len(rows) + 0.5, 0.5)
    ax.set_axis_off()
    ax.set_title("Package imports (grey: downward or same layer, red: upward)")
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    graph = collect()
    s = summary(graph)
    print(f"modules {s['modules']}, edges {s['edges']}, upward edges {len(s['upward_edges'])}, "
          f"circles {len(s['circles'])}, lines of code {s['lines_of_code']}")
    for a, b in s["upward_edges"]:
        print(f"  upward: {a} -> {b}")
    for c in s["circles"]:
        print(f"  circle: {' , '.join(c)}")
    if s["unlayered_modules"]:
        print(f"  not in a layer: {', '.join(s['unlayered_modules'])}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(s, indent=1))
    if args.png:
        draw(graph, args.png)


if __name__ == "__main__":
    main()
