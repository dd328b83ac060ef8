"""The import graph's two house figures (issue 28): module import cycles and function-level imports.

A cycle is a strongly connected set of modules in the graph of direct imports, function-level
imports included (they hide a circle from a reader, not from Python). Function-level imports are
``import`` statements inside a ``def``; the CLI keeps many on purpose so ``inspector --help`` does
not load torch.

    PYTHONPATH=. python -m benchmarks.import_graph        # add -v for the files with the most
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import grimp
import networkx as nx

PACKAGES = ("models", "data", "inspector", "ui", "benchmarks")
ROOT = Path(__file__).resolve().parents[1]


def cycles(packages: tuple[str, ...] = PACKAGES) -> list[list[str]]:
    graph = grimp.build_graph(*packages, include_external_packages=False, cache_dir=None)
    edges = nx.DiGraph()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges.add_edge(module, imported)
    found = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    return sorted(found, key=lambda c: (len(c), c))


def function_level_imports(packages: tuple[str, ...] = PACKAGES) -> dict[str, int]:
    """Per file, the import statements inside functions."""
    counts: dict[str, int] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            seen: set[int] = set()  # a nested def's imports count once
            for fn in ast.walk(tree):
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for node in ast.walk(fn):
                        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in seen:
                            seen.add(id(node))
                            name = str(path.relative_to(ROOT))
                            counts[name] = counts.get(name, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="List the files with the most.")
    args = parser.parse_args()
    found = cycles()
    for cycle in found:
        print("cycle:", " <-> ".join(cycle))
    print("cycles:", len(found))
    counts = function_level_imports()
    product = {k: v for k, v in counts.items() if not k.startswith("benchmarks")}
    print(f"function-level imports: {sum(product.values())} in the product, "
          f"{sum(counts.values()) - sum(product.values())} in benchmarks/")
    if args.verbose:
        for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:25]:
            print(f"  {n:4d} {name}")


if __name__ == "__main__":
    main()
