"""Imports point one way: the app (``main``, ``settings``, ``handlers``, ``access``) ->
``pushqueue`` -> ``pusherlib``, and inside the app ``access`` never imports ``handlers`` (the
handlers install what they add into ``access``). Read from the source files with ``ast``:
every ``import`` counts, inside functions and ``if TYPE_CHECKING:`` blocks too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = frozenset({"main", "settings", "handlers", "access"})
# What each package may not import (its top-level name).
FORBIDDEN: dict[str, frozenset[str]] = {
    "pusherlib": APP | {"pushqueue"},
    "pushqueue": APP,
    "access": frozenset({"handlers", "main"}),
}


def imported_packages(source: str, module: str) -> set[str]:
    """The top-level names of what ``source`` (module ``module``, dotted) imports, relative
    imports resolved."""
    package = module.split(".")
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add((node.module or "").split(".")[0])
            else:
                base = package[: len(package) - node.level]
                found.add((base or (node.module or "").split("."))[0])
    return found


def violations(package: str, sources: dict[str, str]) -> list[str]:
    """``module imports name`` for each forbidden import of ``package`` in ``sources``
    (``{dotted module: source}``)."""
    forbidden = FORBIDDEN[package]
    return sorted(
        f"{module} imports {name}"
        for module, source in sources.items()
        for name in imported_packages(source, module) & forbidden
    )


def package_sources(package: str) -> dict[str, str]:
    """``{dotted module: source}`` of every file of ``package`` (``access/__init__.py`` is
    ``access.__init__``: its relative imports resolve as Python resolves them)."""
    sources = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_from_the_app_to_the_libraries(package):
    assert package_sources(package), f"no source files found for {package}"
    assert violations(package, package_sources(package)) == []


@pytest.mark.parametrize(
    ("package", "module", "source", "name"),
    [
        ("pusherlib", "pusherlib.endpoints.policy", "from pushqueue import logs", "pushqueue"),
        ("pusherlib", "pusherlib.transports", "def f():\n    import settings", "settings"),
        ("pushqueue", "pushqueue.worker", "import handlers.worker", "handlers"),
        ("pushqueue", "pushqueue.worker", "from access import oidc", "access"),
        ("access", "access.channels", "from handlers.demo_auth import install_demo_policy", "handlers"),
        ("access", "access.iap", "if TYPE_CHECKING:\n    from handlers import application", "handlers"),
        ("access", "access.oidc", "from ..handlers import wiring", "handlers"),
    ],
)
def test_an_import_against_the_direction_is_found(package, module, source, name):
    assert violations(package, {module: source}) == [f"{module} imports {name}"]


def test_relative_imports_inside_a_package_are_allowed():
    assert violations("access", {"access.iap": "from .oidc import GoogleCerts\nfrom . import oidc"}) == []
    assert violations("pushqueue", {"pushqueue.worker": "from . import logs\nimport pusherlib"}) == []
