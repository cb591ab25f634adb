"""The wheel's package mapping covers every package directory (a new subpackage that
pyproject.toml does not list would be missing from a normal, non-editable install)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if sys.version_info < (3, 11):
    pytest.skip("tomllib needs Python 3.11", allow_module_level=True)
import tomllib  # noqa: E402


def _package_dirs() -> dict:
    """Installed package name -> source directory, for every directory holding __init__.py."""
    found = {}
    for top, prefix in (("graphk", "graphk"), ("ir", "graphk.ir"), ("passes", "graphk.passes"),
                        ("codegen", "graphk.codegen")):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files and "__pycache__" not in folder:
                relative = os.path.relpath(folder, os.path.join(ROOT, top))
                name = prefix if relative == "." else prefix + "." + relative.replace(os.sep, ".")
                found[name] = os.path.relpath(folder, ROOT).replace(os.sep, "/")
    return found


def test_every_package_is_listed_and_mapped_to_its_directory():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        tool = tomllib.load(handle)["tool"]["setuptools"]
    listed = set(tool["packages"])
    mapping = tool["package-dir"]
    for name, folder in _package_dirs().items():
        assert name in listed, f"{name} ({folder}) is not in [tool.setuptools] packages"
        assert mapping.get(name) == folder, f"{name} should map to {folder}"
