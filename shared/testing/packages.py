"""A tiny installable Python project, for tests and benches that build environments without a package index.

`local_package(folder, name, version)` writes a project pip can install by path (`pip install ./folder`) with
no network at all: its `pyproject.toml` requires nothing to build, and its build backend is a module of the
project itself (`backend-path`) that zips one module and the wheel metadata, so pip's isolated build
environment needs nothing from an index. The installed module, `module_name(name)`, holds `VERSION`.
"""

from __future__ import annotations

from pathlib import Path

_PYPROJECT = """\
[build-system]
requires = []
build-backend = "tiny_backend"
backend-path = ["."]

[project]
name = "{name}"
version = "{version}"
"""

# A PEP 517 backend in a few lines: pip calls build_wheel; the other hooks are optional.
_BACKEND = """\
import base64
import hashlib
import os
import time
import zipfile

NAME = {name!r}
VERSION = {version!r}
MODULE = {module!r}
BUILD_SECONDS = {build_seconds!r}


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{{path}},sha256={{digest}},{{len(data)}}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if BUILD_SECONDS:
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "building.pid"), "w") as pid:
            pid.write(str(os.getpid()))
        time.sleep(BUILD_SECONDS)
    dist = f"{{MODULE}}-{{VERSION}}"
    files = {{
        f"{{MODULE}}.py": f"VERSION = {{VERSION!r}}\\n".encode(),
        f"{{dist}}.dist-info/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode(),
        f"{{dist}}.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: tiny_backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = [_record_line(path, data) for path, data in files.items()] + [f"{{dist}}.dist-info/RECORD,,"]
    files[f"{{dist}}.dist-info/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{{dist}}-py3-none-any.whl"
    with zipfile.ZipFile(f"{{wheel_directory}}/{{wheel}}", "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel
"""


def local_package(folder: Path, name: str, version: str = "1.0", build_seconds: float = 0.0) -> Path:
    """Write the project into `folder` (created) and return it; `import <module_name(name)>` after install.
    Building its wheel takes `build_seconds` more (a slow build, for timeouts), the building process's id
    written to `folder/building.pid`."""
    folder.mkdir(parents=True, exist_ok=True)
    module = module_name(name)
    (folder / "pyproject.toml").write_text(_PYPROJECT.format(name=name, version=version))
    (folder / "tiny_backend.py").write_text(
        _BACKEND.format(name=name, version=version, module=module, build_seconds=build_seconds)
    )
    return folder


def module_name(name: str) -> str:
    return name.replace("-", "_").replace(".", "_").lower()
