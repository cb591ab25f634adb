"""Every public name of graphk.backend has a Keras-style docstring, and help(K) lists them.

Keras style: a summary line, an `Arguments:` section naming every parameter, a
`Returns:` section (except for the procedures below, which return nothing), and
an `Example:` where it helps; every example runs as written (doctest).
"""
import doctest
import inspect
import pydoc
import re
import sys
import types

import pytest

from graphk import backend as K

# Called for their effect; they return None, so they need no Returns section.
PROCEDURES = {
    "batch_set_value", "clear_session", "manual_variable_initialization", "reset_uids",
    "set_epsilon", "set_floatx", "set_image_data_format", "set_learning_phase", "set_session",
    "set_value",
}
# Python's builtins, kept under these names as Keras' backends keep them: their own docs.
BUILTINS = {"py_all", "py_any", "py_sum", "py_slice"}


def _public_names() -> set:
    return {n for n in dir(K) if not n.startswith("_")
            and not isinstance(getattr(K, n), types.ModuleType)}


def test_all_lists_every_public_name():
    assert set(K.__all__) == _public_names()


def test_help_shows_every_public_function():
    text = pydoc.render_doc(K, renderer=pydoc.plaintext)
    assert "placeholder" in text.split("FUNCTIONS")[0] or "FUNCTIONS" in text
    shown = set(re.findall(r"^    (\w+)\(", text, flags=re.M))
    functions = {n for n in K.__all__ if inspect.isfunction(getattr(K, n))}
    assert functions <= shown, sorted(functions - shown)


def _sections(doc: str) -> dict:
    """Section title -> body, for the `Title:` lines of a docstring."""
    sections, current = {}, "summary"
    for line in doc.splitlines():
        match = re.fullmatch(r"(Arguments|Returns|Example|Examples|Raises):\s*", line)
        if match:
            current = match.group(1)
            sections[current] = ""
        else:
            sections[current] = sections.get(current, "") + line + "\n"
    return sections


def _parameters(obj) -> list:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]


@pytest.mark.parametrize("name", sorted(K.__all__))
def test_public_name_has_a_keras_style_docstring(name):
    obj = getattr(K, name)
    doc = inspect.getdoc(obj)
    assert doc and len(doc.split("\n")[0]) > 10, f"K.{name} has no docstring"
    if name in BUILTINS:
        return
    if inspect.isclass(obj):
        assert obj.__doc__, f"class K.{name} has no docstring of its own"
        return
    sections = _sections(doc)
    parameters = _parameters(obj)
    if parameters:
        assert "Arguments" in sections, f"K.{name}: no Arguments section"
        for parameter in parameters:
            assert re.search(rf"^\s+{parameter}\b", sections["Arguments"], flags=re.M), \
                f"K.{name}: argument {parameter!r} is not described"
    if name not in PROCEDURES:
        assert "Returns" in sections, f"K.{name}: no Returns section"


def _examples():
    """Every docstring example of graphk.backend's modules (K and np in scope)."""
    import numpy as np

    finder = doctest.DocTestFinder()
    modules = {getattr(K, name).__module__ for name in K.__all__
               if getattr(getattr(K, name), "__module__", "").startswith("graphk.")}
    for module_name in sorted(modules | {"graphk.backend"}):
        module = sys.modules[module_name]
        for test in finder.find(module, globs={"K": K, "np": np}):
            if test.examples:
                yield test


@pytest.mark.parametrize("example", list(_examples()), ids=lambda t: t.name)
def test_docstring_examples_run_as_written(example):
    K.clear_session()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report = []
    result = runner.run(example, out=report.append)
    assert result.failed == 0, "".join(report)
