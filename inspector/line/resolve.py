"""Which model bundle a name stands for: a folder, ``demo``, a registry version, or (none given) the
deployed version.

Below :mod:`inspector.line.build` so that what needs only the choice (the golden-parts check,
roll-out, adaptation, the shadow) does not import the whole line assembly that uses it.
"""

from __future__ import annotations

from pathlib import Path

from inspector.errors import InspectorError
from inspector.line.demo import demo_model_path
from inspector.registry import Registry, is_version_id, registry_holding


def resolve_model(model: str | None, home: Path) -> Path:
    """The bundle to run: a path, ``demo``, or (none given) the deployed version, else the demo model.

    A registry version (the deployed one, or its folder given as a path) is checked against the
    checksums recorded when it was registered: weights swapped in outside the product never judge
    parts under that version's name.
    """
    if model in (None, ""):
        registry = Registry(home)
        deployed = registry.deployed()
        return registry.checked_path(deployed.id) if deployed else demo_model_path()
    if model == "demo":
        return demo_model_path()
    return _checked_if_registered(Path(model))


def _checked_if_registered(path: Path) -> Path:
    """``path`` itself; verified first when it is a registered version's folder in a model registry."""
    root, resolved = registry_holding(path), path.resolve()
    if root is not None and resolved.parent == root and is_version_id(resolved.name):
        registry = Registry(root.parent)
        if resolved.name in {v.id for v in registry.versions()}:
            registry.checked_path(resolved.name)
    return path


def resolve_shadow(ref: str, home: Path) -> tuple[Path, str]:
    """The shadow candidate's bundle and the name it is shown and stored under."""
    if is_version_id(ref):
        return Registry(home).checked_path(ref), ref
    path = resolve_model(ref, home)
    if not path.is_dir():
        raise InspectorError(f"shadow {ref}: neither a model version (v1, v2, ...) nor a bundle folder")
    return path, ("demo" if ref == "demo" else path.name)
