"""pytest plugin of the adapted Keras suite: every test's outcome into a JSON file.

An outcome is "passed", "failed" (the test body failed), "skipped" (skip or
xfail) or "error" (setup or teardown failed, or the file could not be
collected); each test's time (setup, call and teardown) is recorded beside
it. The file named by $GRAPHK_KERAS_SUITE_REPORT is written when the session
ends.
"""
import json
import os

_outcomes: dict = {}
_seconds: dict = {}


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration
    previous = _outcomes.get(report.nodeid)
    if report.when == "call":
        outcome = "skipped" if report.skipped else report.outcome
    elif report.failed:
        outcome = "error"
    elif report.skipped:
        outcome = "skipped"
    elif previous is None:
        outcome = "passed"  # setup passed; the call will overwrite this
    else:
        return
    if previous in ("error", "failed") and outcome != "error":
        return  # a later phase never hides an earlier failure
    _outcomes[report.nodeid] = outcome


def pytest_collectreport(report):
    """A test file that cannot be imported counts as one error, under the file's id."""
    if report.failed:
        _outcomes[report.nodeid] = "error"


def pytest_sessionfinish(session):
    path = os.environ.get("GRAPHK_KERAS_SUITE_REPORT")
    if path:
        with open(path, "w") as handle:
            json.dump({"outcomes": _outcomes, "seconds": _seconds}, handle, indent=0,
                      sort_keys=True)
