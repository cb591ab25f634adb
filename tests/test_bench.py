"""`graphk bench` on tiny sizes (GRAPHK_BENCH_SCALE=tiny): every case runs, is checked
against its NumPy reference, and lands in the tables and the JSON. No timed asserts."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from graphk.bench import runner, suite
from graphk.bench.cases import CASES, check
from graphk.bench.report import case_table, update_readme
from graphk.bench.worker import Worker


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One quick tiny run of every case (main venv: graphk lowerings and NumPy)."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    environment = dict(os.environ, GRAPHK_BENCH_SCALE="tiny")
    done = subprocess.run([sys.executable, "-m", "graphk", "bench", "--quick", "--threads", "1",
                           "--only", "W1,W2,W3,W4,W5-cold,W6,W7,W8-mlp", "--json", str(out)],
                          capture_output=True, text=True, env=environment, timeout=600)
    return done, json.loads(out.read_text()) if out.exists() else None


def test_every_case_runs_and_is_checked(tiny_run):
    done, result = tiny_run
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["case"] for r in result["cases"]] == [
        "W1-large", "W1-small", "W2", "W2-onehot", "W3", "W4", "W5-cold", "W6", "W7", "W8-mlp"]
    for record in result["cases"]:
        assert not record["failed"], record["failed"]
        names = {row["implementation"] for row in record["rows"]}
        assert any(name.startswith("graphk") for name in names), record["case"]
        if record["case"] != "W5-cold":  # compile time has no NumPy implementation
            assert "numpy" in names, record["case"]
        for row in record["rows"]:
            assert 0 <= row["check"] <= 1  # worst error within the tolerance
            assert len(row["rounds"]) >= 1 and row["min"] <= row["median"]


def test_output_has_tables_mode_and_machine(tiny_run):
    done, result = tiny_run
    assert "threads=1 (pinned" in done.stdout
    assert "| implementation | median | min | vs NumPy | vs best peer | rounds |" in done.stdout
    assert "#### W4 call overhead, f(x) = x + 1 on shape (4,)" in done.stdout
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and "numpy" in machine["versions"]
    assert result["threads"] == "1"
    assert all(hello.get("core") is not None for hello in result["workers"].values())


def test_rounds_are_interleaved_between_workers():
    """interleave asks each worker for one round in turn, rotating the order."""
    asked = []

    class Fake:
        def __init__(self, label):
            self.label = label

        def request(self, message):
            asked.append(self.label)
            return {"seconds": 1.0}
    times = runner.interleave([Fake("a"), Fake("b"), Fake("c")], rounds=3, min_seconds=0)
    assert asked == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert times == {"a": [1.0] * 3, "b": [1.0] * 3, "c": [1.0] * 3}


def test_ratios_are_medians_of_paired_rounds():
    rows = [{"implementation": "graphk numpy", "median": 2.0, "min": 2.0,
             "rounds": [2.0, 2.0, 8.0]},
            {"implementation": "numpy", "median": 1.0, "min": 1.0, "rounds": [1.0, 2.0, 4.0]},
            {"implementation": "jax", "median": 0.5, "min": 0.5, "rounds": [0.5, 0.5, 0.5]}]
    runner.add_ratios(rows)
    assert rows[0]["vs_numpy"] == 2.0 and rows[0]["best_peer"] == "jax"
    assert rows[0]["vs_best_peer"] == 4.0
    table = case_table({"case": "W4", "rows": rows, "skipped": {"pytensor": "not installed"},
                        "failed": {}}, suite.sizes("tiny"))
    assert "| jax | 500 ms | 500 ms | 0.25x | 1.00x (jax) | 3 |" in table
    assert "- pytensor: not run (not installed)" in table


def test_worker_checks_against_the_reference_and_reports_failures(monkeypatch):
    worker = Worker("graphk:numpy")
    reply = worker.setup({"case": "W4", "scale": "tiny", "round_seconds": 0.001})
    assert reply["ok"] and reply["calls"] >= 1
    assert worker.round()["seconds"] > 0
    monkeypatch.setitem(CASES["W4"].builders, "numpy",
                        lambda data, lowering: lambda: [data["x"] + 2])  # a wrong answer
    reply = Worker("numpy").setup({"case": "W4", "scale": "tiny", "round_seconds": 0.001})
    assert not reply["ok"] and "differs from the NumPy reference" in reply["failed"]
    assert "no jax implementation" in Worker("jax").setup(
        {"case": "W8-mlp", "scale": "tiny", "round_seconds": 0.001})["skip"]


def test_check_tolerance():
    assert check([np.ones(3)], [np.ones(3)], (1e-6, 0)) == 0
    with pytest.raises(AssertionError, match="shape"):
        check([np.ones(3)], [np.ones(4)], (1e-6, 0))


def test_only_selects_workloads_and_rejects_unknown_names():
    assert suite.select("W1,w8-mlp") == ["W1-large", "W1-small", "W8-mlp"]
    with pytest.raises(ValueError, match="no workload 'W9'"):
        suite.select("W9")


def test_update_readme_rewrites_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- bench:start -->\nold\n<!-- bench:end -->\nafter\n")
    update_readme("| new table |\n", readme)
    text = readme.read_text()
    assert text.startswith("before\n<!-- bench:start -->") and text.endswith("after\n")
    assert "| new table |" in text and "old" not in text
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="no <!-- bench:start -->"):
        update_readme("x", readme)


def test_bench_help_and_bad_only():
    from graphk.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    assert main(["bench", "--only", "W9"]) == 2


def test_from_json_prints_the_tables_of_a_saved_record(tiny_run, tmp_path, capsys):
    from graphk.cli import main

    _, result = tiny_run
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(result))
    assert main(["bench", "--from-json", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "threads=1 (pinned" in out and "#### W3 MLP SGD step, batch 8, 16-8-8-4" in out
