"""The graphk command line: opt, run and dot on IR files, and errors for bad files."""
import subprocess
import sys

import numpy as np
import pytest

from graphk import backend as K
from graphk.cli import main
from graphk.ir import parse


@pytest.fixture()
def ir_file(tmp_path):
    x = K.placeholder((None, 3), name="x")
    W = K.variable(np.arange(6, dtype="float32").reshape(3, 2) / 10, name="W")
    fn = K.function([x], [K.tanh(K.dot(x, W)) * 1.0])
    path = tmp_path / "mlp.gkir"
    path.write_text(fn.ir.to_text(full_constants=True))
    return path


def test_opt_prints_ir_that_parses_back(ir_file, capsys):
    assert main(["opt", str(ir_file)]) == 0
    printed = capsys.readouterr().out
    assert "tanh" in printed
    parse(printed)


def test_opt_print_after_all_goes_to_stderr(ir_file, capsys):
    from graphk.passes.pipeline import PIPELINE

    names = ",".join(p.name for p in PIPELINE)
    assert main(["opt", str(ir_file), "--print-after-all"] +
                ([f"--passes={names}"] if names else [])) == 0
    captured = capsys.readouterr()
    assert captured.err.count("IR after") == len(PIPELINE)
    parse(captured.out)


def test_opt_unknown_pass_is_an_error(ir_file, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["opt", str(ir_file), "--passes=no_such_pass"])
    assert stop.value.code == 2
    assert "unknown pass 'no_such_pass'" in capsys.readouterr().err


def test_run_feeds_inputs_and_variables(ir_file, tmp_path, capsys):
    x = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)
    W = np.full((3, 2), 0.5, dtype="float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "W.npy", W)
    out = tmp_path / "out.npz"
    assert main(["run", str(ir_file), f"--input=x={tmp_path / 'x.npy'}",
                 f"--input=W={tmp_path / 'W.npy'}", f"--save={out}"]) == 0
    np.testing.assert_allclose(np.load(out)["output0"], np.tanh(x @ W), rtol=1e-6)


def test_run_reports_a_bad_feed(ir_file, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((2, 4), dtype="float32"))
    assert main(["run", str(ir_file), f"--input=x={tmp_path / 'x.npy'}"]) == 1
    err = capsys.readouterr().err
    assert "expects shape (?" in err and "got shape (2, 4)" in err


def test_run_needs_every_input(ir_file, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", str(ir_file)])
    assert stop.value.code == 2
    assert "missing --input for ['x']" in capsys.readouterr().err


def test_dot_writes_graphviz(ir_file, tmp_path):
    out = tmp_path / "g.dot"
    assert main(["dot", str(ir_file), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith('digraph "') and "tanh" in text and "->" in text


@pytest.mark.parametrize("command", ["opt", "run", "dot"])
def test_a_malformed_file_names_line_and_column(tmp_path, ir_file, command, capsys):
    bad = tmp_path / "bad.gkir"
    bad.write_text(ir_file.read_text().replace("tanh", "tanx"))
    with pytest.raises(SystemExit) as stop:
        main([command, str(bad)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "line 5, column" in err and "unknown op 'tanx'" in err


def test_a_missing_file_is_an_error(capsys):
    assert main(["dot", "/nonexistent/graph.gkir"]) == 2
    assert "No such file" in capsys.readouterr().err


def test_python_dash_m_is_the_same_entry_point():
    done = subprocess.run([sys.executable, "-m", "graphk", "opt", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--print-after-all" in done.stdout
