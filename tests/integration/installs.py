"""Installing udsproxy for real, offline, as root, into a venv another user can run.

The dependencies come from this interpreter's own site-packages, packed back into wheels
(:func:`repack`); udsproxy is built from a copy of the checkout by pip and setuptools, as a
root ``pip install .`` or ``pip install -e .`` does.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.proxy import REPO_ROOT

# What a source tree needs to build: pyproject.toml names README.md as the readme.
PROJECT_FILES = ("pyproject.toml", "README.md", "udsproxy", "twisted")
# Interpreters an unprivileged user can run (a pyenv build under /root is not one).
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/bin/pypy3")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# Files pip writes at install time, not found in a wheel.
INSTALL_ONLY = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def requirements(dist: metadata.Distribution) -> List[str]:
    """The names ``dist`` depends on here (extras left out)."""
    reqs = [Requirement(text) for text in dist.requires or ()]
    return [r.name for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def requirement_closure(names: Iterable[str]) -> Dict[str, metadata.Distribution]:
    """The installed distributions ``names`` need, recursively."""
    found: Dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name not in found:
            found[name] = metadata.distribution(name)
            todo.extend(requirements(found[name]))
    return found


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """A wheel holding what pip installed for ``dist`` (its RECORD, byte code and scripts
    left out: pip writes those again when it installs the wheel)."""
    tags = [
        line.split(":", 1)[1].strip().split("-")
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    # The compressed tag set of a wheel name: py2.py3-none-any
    tag = "-".join(".".join(sorted({t[i] for t in tags})) for i in range(3))
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    wheel = dest / f"{name}-{dist.version}-{tag}.whl"
    record: List[str] = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as out:
        info_dir: Optional[str] = None
        for path in dist.files or ():
            parts = path.parts
            if parts[0] == ".." or "__pycache__" in parts or path.suffix == ".pyc":
                continue
            if parts[0].endswith(".dist-info"):
                info_dir = parts[0]
                if parts[-1] in INSTALL_ONLY:
                    continue
            out.write(dist.locate_file(path), str(path))
            record.append(f"{path},,")
        assert info_dir is not None, dist
        record.append(f"{info_dir}/RECORD,,")
        out.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return wheel


def system_python() -> Optional[str]:
    """An interpreter outside /root of this one's kind (same cache tag, so the repacked
    wheels fit) that user nobody can run; None when there is none."""
    for candidate in SYSTEM_PYTHONS:
        if not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [*NOBODY, candidate, "-c", "import sys, venv; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0 and probe.stdout.strip() == sys.implementation.cache_tag:
            return candidate
    return None


def build_wheelhouse(dest: Path) -> Optional[str]:
    """udsproxy's dependencies and its build backend, repacked from this interpreter into
    ``dest``; the reason it cannot be done, or None."""
    backend = metadata.distribution("setuptools")
    if tuple(int(p) for p in backend.version.split(".")[:2]) < (70, 1):
        return f"setuptools {backend.version} here needs the wheel package to build (< 70.1)"
    dest.mkdir(parents=True, exist_ok=True)
    for dist in requirement_closure(
        [*requirements(metadata.distribution("udsproxy")), "setuptools"]
    ).values():
        repack(dist, dest)
    return None


def copy_project(dest: Path) -> Path:
    """The files a build needs, without byte code or plugin caches."""
    ignore = shutil.ignore_patterns("__pycache__", "dropin.cache", "*.egg-info")
    dest.mkdir()
    for name in PROJECT_FILES:
        source = Path(REPO_ROOT) / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


def install(python: str, wheelhouse: Path, where: Path, editable: bool) -> Path:
    """As root: a venv in ``where`` made by ``python``, with udsproxy installed by pip from a
    copy of the checkout (``pip install [-e] PROJECT``), offline. Returns the venv."""
    where.mkdir(mode=0o755)
    os.chmod(where, 0o755)
    project = copy_project(where / "project")
    venv = where / "venv"
    # No pip configuration from the machine: the wheelhouse is the only source.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(where), "PIP_CONFIG_FILE": os.devnull}
    steps = [[python, "-m", "venv", str(venv)]]
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index"]
    pip += ["--disable-pip-version-check", "--find-links", str(wheelhouse)]
    steps.append([*pip, "-e", str(project)] if editable else [*pip, str(project)])
    for step in steps:
        done = subprocess.run(
            step, env=env, umask=0o022, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{' '.join(step)}:\n{done.stdout}{done.stderr}"
    return venv
