"""The act jobs' bytecode, compiled once into uv's cache (workflow_harness.precompile_uv_cache):
a venv uv fills from that cache gets it with the sources, and its Python loads it instead of
compiling; a stale one is replaced in the venv, never rewritten in the cache."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from workflow_harness import clean_env, precompile_uv_cache

UV = Path(sys.executable).parent / "uv"
pytestmark = pytest.mark.skipif(not UV.is_file(), reason="uv is not installed (dev extras)")
TAG = sys.implementation.cache_tag


def _wheel(folder: Path) -> Path:
    """A one-module wheel, ``tinymod`` 1.0."""
    files = {
        "tinymod/__init__.py": "VALUE = 42\n",
        "tinymod-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinymod\nVersion: 1.0\n",
        "tinymod-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true"
        "\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    files["tinymod-1.0.dist-info/RECORD"] = "\n".join([*record, "tinymod-1.0.dist-info/RECORD,,"])
    path = folder / "tinymod-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
    return path


def _venv(path: Path, wheels: Path, cache: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    subprocess.run(
        [str(UV), "pip", "install", "--quiet", "--python", str(path / "bin" / "python"),
         "--offline", "--no-index", "--find-links", str(wheels), "tinymod"],
        env={**clean_env(), "UV_CACHE_DIR": str(cache), "UV_NO_CONFIG": "1"}, check=True,
    )  # fmt: skip
    (site,) = path.glob("lib/python*/site-packages")
    return site


def _import_log(site: Path) -> str:
    env = {**clean_env(), "PYTHONPYCACHEPREFIX": "", "PYTHONDONTWRITEBYTECODE": ""}
    python = site.parents[2] / "bin" / "python"
    done = subprocess.run(
        [str(python), "-v", "-c", "import tinymod; assert tinymod.VALUE == 42"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return done.stderr


def test_a_venv_filled_from_the_cache_loads_the_bytecode_compiled_there(tmp_path: Path):
    wheels, cache = tmp_path / "wheels", tmp_path / "uv-cache"
    wheels.mkdir()
    _wheel(wheels)
    warm = _venv(tmp_path / "warm", wheels, cache)
    assert precompile_uv_cache(warm.parents[2], cache, imports="import tinymod") == 1
    (cached,) = cache.glob(f"archive-v0/*/tinymod/__pycache__/__init__.{TAG}.pyc")

    job = _venv(tmp_path / "job", wheels, cache)
    pyc = job / "tinymod" / "__pycache__" / f"__init__.{TAG}.pyc"
    assert os.path.samefile(pyc, cached)  # linked with the sources, not compiled
    log = _import_log(job)
    assert f"code object from '{pyc}'" in log, log

    # a stale bytecode file (its source changed in this venv) is rewritten in the venv only
    cached_bytes = cached.read_bytes()
    source = job / "tinymod" / "__init__.py"
    source.unlink()
    source.write_text("VALUE = 42  # changed\n")
    _import_log(job)
    assert not os.path.samefile(pyc, cached)
    assert cached.read_bytes() == cached_bytes
