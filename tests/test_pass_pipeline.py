"""The pipeline as K.function uses it: pass selection, fn.report(), GRAPHK_DUMP_DIR dumps,
locations through rewrites, verify after every pass, and agreement with passes="none"."""
from __future__ import annotations

import os
import runpy

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir import Graph
from graphk.passes import report as report_module
from graphk.passes.pipeline import PIPELINE, known_pass_names, run_pipeline, select_passes

HERE = os.path.basename(__file__)


def _mlp_step(width=16, classes=4):
    """A 2-layer relu MLP's SGD step: (placeholders, loss, updates)."""
    rng = np.random.default_rng(0)
    x, y = K.placeholder((None, 8)), K.placeholder((None, classes))
    params = [K.variable(rng.normal(size=s).astype(np.float32) * 0.3)
              for s in ((8, width), (width,), (width, classes), (classes,))]
    h = K.relu(K.dot(x, params[0]) + params[1])
    logits = K.dot(h, params[2]) + params[3]
    loss = K.mean(K.categorical_crossentropy(y, K.softmax(logits)))
    updates = [K.update_sub(p, 0.1 * g) for p, g in zip(params, K.gradients(loss, params))]
    return [x, y], loss, updates, params


def _feeds(classes=4):
    rng = np.random.default_rng(1)
    return [rng.normal(size=(5, 8)).astype(np.float32),
            np.eye(classes, dtype=np.float32)[rng.integers(0, classes, 5)]]


def test_pass_specs_select_and_unknown_names_are_clear_errors():
    names = known_pass_names()
    assert [p.name for p in select_passes("none")] == []
    assert [p.name for p in select_passes(None)] == names
    kept = [p.name for p in select_passes("-cse, -fold")]
    assert "cse" not in kept and "fold" not in kept and len(kept) == len(names) - 2
    with pytest.raises(ValueError, match=r"unknown pass spec '-fusoin'.*known passes: \["):
        select_passes("-fusoin")
    with pytest.raises(ValueError, match="known passes"):
        K.function([K.placeholder((2,))], [K.constant(1.0)], passes="cse")


def test_default_pipeline_and_no_passes_agree_and_every_pass_verifies():
    inputs, loss, updates, params = _mlp_step()
    initial = [K.get_value(p) for p in params]
    results = {}
    for spec in (None, "none"):
        for p, value in zip(params, initial):
            K.set_value(p, value)
        fn = K.function(inputs, [loss], updates=updates, passes=spec)
        results[spec] = [fn(_feeds())[0]] + [K.get_value(p) for p in params]
    for a, b in zip(results[None], results["none"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    graph = Graph(inputs, [loss], [tuple(u) for u in updates])
    run_pipeline(graph, check=True)  # verify() after every pass


def test_rewritten_nodes_keep_the_user_location():
    inputs, loss, updates, _ = _mlp_step()
    fn = K.function(inputs, [loss], updates=updates)
    for node in fn.ir.nodes:
        if not node.op.leaf:
            assert node.location and node.location.split(":")[0].endswith(HERE), node


def test_report_lists_each_pass_and_takes_sections():
    x = K.placeholder((None, 3))
    fn = K.function([x], [K.cast(x, "float32") * 1.0 + K.constant(1.0) * 2.0])
    fn._report.sections.append(lambda f: "memory: peak intermediate bytes 123")
    report_module.REPORT_SECTIONS.append(lambda f: f"lowering of {f.name}: numpy")
    try:
        text = fn.report(show=False)
    finally:
        report_module.REPORT_SECTIONS.pop()
    for name in known_pass_names():
        assert f"\n  {name} " in text
    assert "nodes before" in text and "peak intermediate bytes 123" in text
    assert f"lowering of {fn.name}: numpy" in text
    before = fn._report.records[0].nodes_before
    assert before > len(fn.ir.nodes)  # the cast, * 1.0 and the constant product are gone
    none = K.function([x], [x], passes="none").report(show=False)
    assert "no passes ran" in none


def test_dump_dir_writes_numbered_ir_per_function_and_a_runnable_program(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHK_DUMP_DIR", str(tmp_path))
    for _ in range(3):
        K.eval(K.constant(2.0) * 3.0)
    directories = sorted(os.listdir(tmp_path))
    assert len(directories) == 3 and all(d.startswith("eval.") for d in directories)
    inputs, loss, updates, _ = _mlp_step()
    fn = K.function(inputs, [loss], updates=updates, name="step")
    path = fn._report.dump.path
    files = sorted(os.listdir(path))
    expected = ["00-input.gkir"] + [f"{i + 1:02d}-{p.name}.gkir" for i, p in enumerate(PIPELINE)]
    assert files == sorted(expected + ["program.py", "variables.npz"])
    program = runpy.run_path(os.path.join(path, "program.py"))  # imports only what it uses
    executable = program["load"]()
    np.testing.assert_allclose(executable(_feeds())[0], fn(_feeds())[0], rtol=1e-5)


def test_a_dump_path_that_is_a_file_is_a_clear_error_at_compile_time(tmp_path, monkeypatch):
    target = tmp_path / "not_a_directory"
    target.write_text("")
    monkeypatch.setenv("GRAPHK_DUMP_DIR", str(target))
    x = K.placeholder((2,))
    with pytest.raises(ValueError, match="is an existing file, not a directory"):
        K.function([x], [x * 2.0])
