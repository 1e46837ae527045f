"""The layers hold: pure state imports no algorithm, no cycles, HTTP does not import TCP mode."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import udsproxy

ROOT = Path(udsproxy.__file__).parent


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, with_type_checking: bool = False) -> Set[str]:
    """udsproxy modules ``path`` imports (at run time unless ``with_type_checking``)."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: Set[str] = set()

    def visit(nodes: List[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                if with_type_checking:
                    visit(node.body)
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    found.update(a.name for a in sub.names if a.name.startswith("udsproxy"))
                elif isinstance(sub, ast.ImportFrom):
                    if sub.level:
                        base = package[: len(package) - sub.level + 1]
                        mod = ".".join(base + ([sub.module] if sub.module else []))
                    else:
                        mod = sub.module or ""
                    if mod.startswith("udsproxy"):
                        found.add(mod)
                        found.update(f"{mod}.{a.name}" for a in sub.names)

    visit(tree.body)
    return found


def graph() -> Dict[str, Set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    return {name: {m for m in imports(p) if m in modules} for name, p in modules.items()}


def test_runtime_is_pure_state() -> None:
    """runtime.py imports neither the balancers, the queue nor the backend core."""
    found = imports(ROOT / "runtime.py", with_type_checking=True)
    assert not {
        m for m in found if m.startswith(("udsproxy.balance", "udsproxy.queue", "udsproxy.backend"))
    }


def test_http_mode_does_not_import_tcp_mode() -> None:
    """Helpers both modes need live in stream.py/net/, not in tcp.py."""
    for path in (ROOT / "http").glob("*.py"):
        assert "udsproxy.tcp" not in imports(path, with_type_checking=True), path.name


def test_no_import_cycles() -> None:
    """Run-time imports among udsproxy's modules form no cycle."""
    g = graph()
    state: Dict[str, int] = {}

    def walk(node: str, trail: List[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                walk(nxt, trail + [node])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            walk(node, [])


def test_pure_core_imports_no_reactor() -> None:
    """Config, balancing, state, queue, backend core and retry policy never touch twisted.internet."""
    pure = ["runtime.py", "queue.py", "backend.py", "retry.py"]
    paths = [ROOT / p for p in pure] + list((ROOT / "balance").glob("*.py"))
    paths += list((ROOT / "config").glob("*.py"))
    for path in paths:
        assert "twisted.internet" not in path.read_text(), path.name


def test_every_module_imports_first() -> None:
    """Each module imports in a fresh interpreter as the first udsproxy import (a cycle
    through a package's ``__init__`` only shows when the import order changes)."""
    import subprocess
    import sys

    names = sorted(module_name(p) for p in ROOT.rglob("*.py") if p.stem != "__main__")
    script = (
        "import importlib, sys\n"
        "bad = []\n"
        f"for name in {names!r}:\n"
        "    for mod in [m for m in sys.modules if m.startswith('udsproxy')]:\n"
        "        del sys.modules[mod]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        bad.append(f'{name}: {exc}')\n"
        "print('\\n'.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == ""
