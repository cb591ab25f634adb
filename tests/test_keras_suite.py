"""Keras 2.3.1's own test suite passes on graphk, beyond a committed list (issue 10).

Runs tools/keras_suite/run.py in a subprocess: it fetches Keras' sdist once
(cached in ~/.cache/graphk/keras-2.3.1, or $GRAPHK_KERAS_CACHE), adapts a copy
of its tests and runs them with plain pytest against graphk. Fails if any test
outside tools/keras_suite/known_failures.txt fails, or if the sdist cannot be
fetched (no silent skip: CI must show the suite ran). About a minute.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tools", "keras_suite", "run.py")

# Looked up, not imported: importing Keras needs KERAS_BACKEND and the shims (run.py sets both).
if importlib.util.find_spec("keras") is None:
    pytest.skip("keras 2.3.1 (in the test extra) is not installed", allow_module_level=True)


def test_keras_own_suite_passes_beyond_the_known_failures(tmp_path):
    summary = tmp_path / "summary.json"
    done = subprocess.run([sys.executable, RUNNER, "--json", str(summary)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    report = done.stdout[-6000:] + done.stderr[-3000:]
    if done.returncode == 2:
        pytest.fail("Keras 2.3.1's sdist could not be fetched (PyPI unreachable?):\n"
                    + done.stderr[-3000:])
    assert done.returncode == 0, report
    counts = json.loads(summary.read_text())["counts"]
    # The tests Keras skips only because the backend is not named "tensorflow" ran.
    for name in ("keras/metrics_test.py", "keras/losses_test.py"):
        assert counts[name]["skipped"] == 0 and counts[name]["failed"] == 0, (name, counts[name])
    lifted = counts["keras/metrics_test.py"]["passed"] + counts["keras/losses_test.py"]["passed"]
    assert lifted >= 129, report
    assert counts["keras/backend/backend_test.py"]["passed"] >= 130, report  # 138 of 160
