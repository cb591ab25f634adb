"""Run Keras 2.3.1's own test suite against graphk and print a per-file table.

    .venv/bin/python tools/keras_suite/run.py [--files a.py,b.py] [--keep] [--json out.json]
                                              [-- pytest args]

--files picks test files (paths under the sdist's tests/) instead of
DEFAULT_FILES; --keep keeps the adapted copy; --json writes the per-file
counts and the unexpected failures; arguments after -- go to pytest.
tests/test_keras_suite.py runs the default selection in CI.

What it does, in order:

1. Fetches Keras 2.3.1's source distribution once, with
   `pip download --no-deps --no-binary :all: keras==2.3.1`, into a cache
   directory ($GRAPHK_KERAS_CACHE, else ~/.cache/graphk/keras-2.3.1). The
   installed Keras has no tests; the sdist has them. No network: a clear error.
2. Unpacks a COPY of the selected test files into a fresh temporary directory
   and adapts the copy (never the installed Keras), each adaptation an exact
   text replacement that must match (ADAPTATIONS below): backend_test.py's
   tested-backend slot `KTF` is bound to graphk.backend, so its comparisons run
   graphk against Keras' numpy_backend; the skips that fire only because the
   backend is not named "tensorflow" are lifted in metrics_test.py and
   losses_test.py. conftest.py (beside this file) replaces Keras' own: shims
   installed before Keras is imported, the session cleared after every test.
3. Runs plain pytest on the copy in a subprocess with
   KERAS_BACKEND=graphk.backend and a temporary KERAS_HOME, records every
   test's outcome (record.py, a pytest plugin), and prints passed, failed,
   skipped, errors, failures on the known list, and seconds per file.
4. Compares the failures with known_failures.txt (beside this file): tests
   that cannot pass for reasons outside graphk, each with its reason. Exit
   status 0 when nothing else failed, 1 otherwise, 2 when the sdist could
   not be fetched.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = "2.3.1"
SDIST_ROOT = f"Keras-{VERSION}"

# The files CI runs (paths under the sdist's tests/): every test file that exercises
# the backend and can run here. Left out (see README): docs/ (needs TensorFlow and
# Keras' doc sources); applications_test.py, imagenet_utils_test.py, test_datasets.py,
# datasets_test.py (download weights and data sets); data_utils_test.py and
# test_multiprocessing.py (Keras' data pipeline with worker processes, each re-importing
# Keras: minutes, and no backend code); integration_tests/preprocessing/ (the
# keras_preprocessing package, never the backend; image_test.py needs PIL);
# vis_utils_test.py (pydot and graphviz); test_api.py (pyux, and the TF/Theano/CNTK
# backend modules).
DEFAULT_FILES = (
    "integration_tests/test_image_data_tasks.py",
    "integration_tests/test_temporal_data_tasks.py",
    "integration_tests/test_tensorflow_integration.py",
    "integration_tests/test_vector_data_tasks.py",
    "keras/activations_test.py",
    "keras/backend/backend_test.py",
    "keras/callbacks/callbacks_test.py",
    "keras/callbacks/tensorboard_test.py",
    "keras/constraints_test.py",
    "keras/engine/layer_subclassing_tests.py",
    "keras/engine/test_topology.py",
    "keras/engine/test_training.py",
    "keras/initializers_test.py",
    "keras/layers/advanced_activations_test.py",
    "keras/layers/convolutional_recurrent_test.py",
    "keras/layers/convolutional_test.py",
    "keras/layers/core_test.py",
    "keras/layers/cudnn_recurrent_test.py",
    "keras/layers/embeddings_test.py",
    "keras/layers/local_test.py",
    "keras/layers/merge_test.py",
    "keras/layers/noise_test.py",
    "keras/layers/normalization_test.py",
    "keras/layers/pooling_test.py",
    "keras/layers/recurrent_test.py",
    "keras/layers/wrappers_test.py",
    "keras/legacy/interface_test.py",
    "keras/legacy/layers_test.py",
    "keras/losses_test.py",
    "keras/metrics_confusion_matrix_test.py",
    "keras/metrics_correctness_test.py",
    "keras/metrics_functional_test.py",
    "keras/metrics_test.py",
    "keras/metrics_training_test.py",
    "keras/optimizers_test.py",
    "keras/regularizers_test.py",
    "keras/test_sequential_model.py",
    "keras/utils/conv_utils_test.py",
    "keras/utils/generic_utils_test.py",
    "keras/utils/io_utils_test.py",
    "keras/utils/layer_utils_test.py",
    "keras/utils/multi_gpu_test.py",
    "keras/utils/np_utils_test.py",
    "keras/wrappers/scikit_learn_test.py",
    "test_dynamic_trainability.py",
    "test_loss_masking.py",
    "test_loss_weighting.py",
    "test_model_pickling.py",
    "test_model_saving.py",
)

# (file, text in the sdist, replacement): applied to the copy; each must match exactly once.
ADAPTATIONS = (
    ("keras/backend/backend_test.py",
     "    from keras.backend import tensorflow_backend as KTF\n",
     "    import graphk.backend as KTF  # graphk is the backend under test\n"),
    ("keras/metrics_test.py",
     "if K.backend() != 'tensorflow':\n    # Need TensorFlow to use metric.__call__\n"
     "    pytestmark = pytest.mark.skip\n",
     "# graphk: the TF-only skip is lifted; graphk can __call__ a metric.\n"),
    ("keras/losses_test.py",
     "skipif_not_tf = pytest.mark.skipif(\n    K.backend() != 'tensorflow',\n",
     "skipif_not_tf = pytest.mark.skipif(\n    False,  # graphk: TF-only skip lifted\n"),
)


class FetchError(RuntimeError):
    """The sdist is not in the cache and could not be downloaded."""


def cache_dir() -> str:
    default = os.path.join(os.path.expanduser("~"), ".cache", "graphk", f"keras-{VERSION}")
    return os.environ.get("GRAPHK_KERAS_CACHE", default)


def fetch_sdist(directory: str) -> str:
    """The path of Keras' sdist in `directory`, downloading it with pip the first time."""
    found = glob.glob(os.path.join(directory, f"[Kk]eras-{VERSION}.tar.gz"))
    if found:
        return found[0]
    os.makedirs(directory, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"keras=={VERSION}", "-d", directory]
    done = subprocess.run(command, capture_output=True, text=True)
    found = glob.glob(os.path.join(directory, f"[Kk]eras-{VERSION}.tar.gz"))
    if done.returncode != 0 or not found:
        raise FetchError(f"could not download Keras {VERSION}'s sdist from PyPI with "
                         f"`{' '.join(command)}` (is PyPI reachable?):\n{done.stderr[-2000:]}")
    return found[0]


def unpack_tests(sdist: str, files: list[str], destination: str) -> None:
    """The sdist's tests/ files listed (and their package conftests) into destination/tests."""
    prefix = f"{SDIST_ROOT}/tests/"
    with tarfile.open(sdist) as archive:
        members = {m.name[len(prefix):]: m for m in archive.getmembers()
                   if m.name.startswith(prefix) and m.isfile()}
        missing = [f for f in files if f not in members]
        if missing:
            raise SystemExit(f"not in Keras {VERSION}'s tests: {missing}")
        below = {os.path.dirname(f) for f in files}  # e.g. keras/legacy/conftest.py
        conftests = [c for c in members if os.path.basename(c) == "conftest.py"
                     and os.path.dirname(c) and any(d.startswith(os.path.dirname(c))
                                                    for d in below)]
        for name in [*files, *conftests]:
            target = os.path.join(destination, "tests", name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.extractfile(members[name]) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)


def adapt(destination: str, files: list[str]) -> None:
    """Apply ADAPTATIONS to the copied files, and install graphk's conftest.py."""
    for name, old, new in ADAPTATIONS:
        if name not in files:
            continue
        path = os.path.join(destination, "tests", name)
        with open(path) as handle:
            text = handle.read()
        if text.count(old) != 1:
            raise SystemExit(f"adaptation of {name} does not match the sdist: {old!r}")
        with open(path, "w") as handle:
            handle.write(text.replace(old, new))
    shutil.copy(os.path.join(HERE, "conftest.py"), os.path.join(destination, "tests"))
    shutil.copy(os.path.join(HERE, "record.py"), os.path.join(destination, "tests"))
    with open(os.path.join(destination, "pytest.ini"), "w") as handle:
        # A module that cannot be imported is recorded as an error; the others still run.
        handle.write("[pytest]\naddopts = -p record -p no:cacheprovider "
                     "--continue-on-collection-errors\n")


def load_known_failures(path: str = os.path.join(HERE, "known_failures.txt")) -> dict:
    """test id -> reason, from lines `<test id>  # <reason>` (blank lines and # lines ignored)."""
    known = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, _, reason = line.partition("#")
            known[test_id.strip()] = reason.strip()
    return known


def is_known(test_id: str, known: dict) -> bool:
    """An entry names one test id, or a test function without parameters (all of them)."""
    return test_id in known or test_id.split("[")[0] in known


def run_pytest(destination: str, files: list[str], extra: list[str]) -> dict:
    """Run pytest on the adapted copy: {"outcomes": test id -> outcome, "seconds": ...}."""
    report = os.path.join(destination, "outcomes.json")
    home = os.path.join(destination, "keras_home")
    os.makedirs(home)
    env = dict(os.environ, KERAS_BACKEND="graphk.backend", KERAS_HOME=home,
               GRAPHK_KERAS_SUITE_REPORT=report, PYTHONPATH=os.path.join(destination, "tests")
               + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "pytest", "-q", "-rN", "--tb=short", *extra,
               *[os.path.join("tests", f) for f in files]]
    subprocess.run(command, cwd=destination, env=env)
    if not os.path.exists(report):
        raise SystemExit("pytest ended without writing its outcomes (see its output above)")
    with open(report) as handle:
        return json.load(handle)


def table(results: dict, files: list[str], known: dict) -> tuple[str, list[str]]:
    """The per-file table, and the failures not in the known list."""
    outcomes, seconds = results["outcomes"], results["seconds"]
    header = ("file", "passed", "failed", "skipped", "errors", "known", "seconds")
    rows, unexpected, totals = [header], [], [0.0] * 6
    for name in files:
        counts = [0.0] * 6
        for test_id, outcome in outcomes.items():
            if test_id.split("::")[0] != f"tests/{name}":
                continue
            counts[("passed", "failed", "skipped", "error").index(outcome)] += 1
            counts[5] += seconds.get(test_id, 0.0)
            if outcome in ("failed", "error"):
                if is_known(test_id, known):
                    counts[4] += 1
                else:
                    unexpected.append(test_id)
        totals = [t + c for t, c in zip(totals, counts)]
        rows.append(_row(name, counts))
    rows.append(_row("total", totals))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines), unexpected


def _row(name: str, counts: list) -> tuple:
    return (name, *(str(int(c)) for c in counts[:5]), f"{counts[5]:.1f}")


def counts(results: dict, files: list[str]) -> dict:
    """file -> {outcome: number of tests}."""
    table_counts = {name: {"passed": 0, "failed": 0, "skipped": 0, "error": 0} for name in files}
    for test_id, outcome in results["outcomes"].items():
        name = test_id.split("::")[0][len("tests/"):]
        if name in table_counts:
            table_counts[name][outcome] += 1
    return table_counts


def stale_entries(results: dict, files: list[str], known: dict) -> list[str]:
    """Entries of the known list, among the files run, whose tests did not fail."""
    failing = {t for t, o in results["outcomes"].items() if o in ("failed", "error")}
    failing |= {t.split("[")[0] for t in failing}
    return sorted(k for k in known if k not in failing
                  and k.split("::")[0][len("tests/"):] in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", help="comma-separated test files under the sdist's tests/ "
                                        "(default: the CI selection)")
    parser.add_argument("--keep", action="store_true", help="keep the adapted copy")
    parser.add_argument("--json", help="also write the per-file counts, the unexpected "
                                       "failures and the stale known entries to this file")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    files = args.files.split(",") if args.files else list(DEFAULT_FILES)
    started = time.time()
    try:
        sdist = fetch_sdist(cache_dir())
    except FetchError as error:
        print(f"keras_suite: {error}", file=sys.stderr)
        return 2
    destination = tempfile.mkdtemp(prefix="graphk-keras-suite-")
    try:
        unpack_tests(sdist, files, destination)
        adapt(destination, files)
        results = run_pytest(destination, files, args.pytest_args)
    finally:
        if args.keep:
            print(f"keras_suite: adapted copy kept in {destination}")
        else:
            shutil.rmtree(destination, ignore_errors=True)
    known = load_known_failures()
    text, unexpected = table(results, files, known)
    print(f"\nKeras {VERSION}'s tests on graphk ({time.time() - started:.0f} s):\n{text}")
    stale = stale_entries(results, files, known)
    if stale:
        print("\nin known_failures.txt but not failing now:\n  " + "\n  ".join(stale))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"counts": counts(results, files), "unexpected": sorted(unexpected),
                       "stale": stale}, handle, indent=1)
    if unexpected:
        print("\nUNEXPECTED FAILURES:\n  " + "\n  ".join(sorted(unexpected)))
        return 1
    print("\nno failures outside known_failures.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
