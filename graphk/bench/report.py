"""What `graphk bench` prints and writes: markdown tables, the machine, the README block."""
from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

from ..benchmarking import _format

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "amx_tile", "neon", "asimd", "sve")

HEADINGS = {
    "W1-large": lambda s: f"W1 elementwise chain, {s['W1'][0]:,} elements",
    "W1-small": lambda s: f"W1 elementwise chain, {s['W1'][1]:,} elements",
    "W2": lambda s: f"W2 row softmax crossentropy, logits {s['W2'][0]}x{s['W2'][1]}, int labels",
    "W2-onehot": lambda s: f"W2 row softmax crossentropy, logits {s['W2'][0]}x{s['W2'][1]}, "
                           "as logsumexp - sum(one_hot * logits)",
    "W3": lambda s: f"W3 MLP SGD step, batch {s['W3'][0]}, {'-'.join(map(str, s['W3'][1]))}",
    "W4": lambda s: f"W4 call overhead, f(x) = x + 1 on shape ({s['W4'][0]},)",
    "W5-cold": lambda s: f"W5 compile, {s['W5'][0]} tanh layers width {s['W5'][1]} + "
                         "gradients, cold (fresh process, empty cache)",
    "W5-disk": lambda s: f"W5 compile, {s['W5'][0]} tanh layers width {s['W5'][1]} + "
                         "gradients, from the disk cache (fresh process)",
    "W6": lambda s: "W6 SimpleRNN forward + backward, T={}, batch {}, input {}, {} units"
                    .format(*s["W6"]),
    "W7": lambda s: f"W7 conv2d forward + backward, input {s['W7'][0]}, {s['W7'][1]} 3x3 "
                    "filters, loss sum(relu(conv))",
    "W8-mlp": lambda s: f"W8 Keras 2.3.1 digits, MLP, {_images(s)}, time per epoch after the first",
    "W8-cnn": lambda s: f"W8 Keras 2.3.1 digits, CNN, {_images(s)}, time per epoch after the first",
    "W8-lstm": lambda s: f"W8 Keras 2.3.1 digits, LSTM, {_images(s)}, time per epoch after the "
                         "first",
}


def _images(sizes) -> str:
    return f"{sizes['W8'] or 1437} training images"


def machine() -> dict:
    """CPU model and flags, cores, BLAS (threadpoolctl), versions, date."""
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "platform": platform.platform(), "python": platform.python_version(),
            "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "load_average": os.getloadavg()}  # other work on the machine while it ran
    model, flags = platform.processor() or "unknown", []
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    info.update(cpu=model, flags=flags, simd=[f for f in SIMD_FLAGS if f in flags])
    import numpy
    info["versions"] = {"numpy": numpy.__version__, "graphk": _version("graphk"),
                        "llvmlite": _version("llvmlite")}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: pool.get(k) for k in ("internal_api", "version", "num_threads",
                                                   "threading_layer", "architecture")}
                        for pool in threadpool_info()]
    except ImportError:
        info["blas"] = []
    return info


def _version(name: str):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001 (not installed)
        return None


def machine_line(info: dict) -> str:
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']})"
                     for b in info.get("blas", []) if b.get("internal_api") != "openmp") or "?"
    return (f"{info['cpu']}, {info['cores']} cores ({', '.join(info['simd']) or 'no SIMD flags'}); "
            f"BLAS {blas}; Python {info['python']}, NumPy {info['versions']['numpy']}"
            + (f"; load average {info['load_average'][0]:.1f} at the end"
               if "load_average" in info else ""))


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def case_table(record: dict, sizes: dict) -> str:
    """The markdown table of one case, with what was skipped or failed under it."""
    heading = HEADINGS.get(record["case"], lambda s: record["case"])(sizes)
    lines = [f"#### {heading}", "",
             "| implementation | median | min | vs NumPy | vs best peer | rounds |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in sorted(record["rows"], key=lambda r: r["median"]):
        peer = f" ({row['best_peer']})" if row["best_peer"] else ""
        lines.append(f"| {row['implementation']} | {_format(row['median'])} | "
                     f"{_format(row['min'])} | {_ratio(row['vs_numpy'])} | "
                     f"{_ratio(row['vs_best_peer'])}{peer} | {len(row['rounds'])} |")
    notes = [f"{name}: not run ({why.splitlines()[0]})" for name, why in record["skipped"].items()]
    notes += [f"{name}: FAILED ({why.strip().splitlines()[-1]})"
              for name, why in record["failed"].items()]
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def mode_line(result: dict) -> str:
    threads = ("pinned: every worker on one core, single-threaded libraries"
               if result["threads"] == "1" else "default threads (each library chooses)")
    return (f"threads={result['threads']} ({threads}); each implementation in its own worker "
            f"process, rounds interleaved{'; --quick' if result['quick'] else ''}")


def markdown(result: dict, sizes: dict) -> str:
    parts = [f"Benchmarks run {result['machine']['date']} on {machine_line(result['machine'])}.",
             f"Mode: {mode_line(result)}. Ratios are medians of per-round ratios; "
             "every result was checked against a NumPy reference before timing.", ""]
    for record in result["cases"]:
        parts += [case_table(record, sizes), ""]
    return "\n".join(parts).rstrip() + "\n"


def update_readme(text: str, path: Path, command: str = "python -m graphk bench") -> None:
    """Replace the block between the bench markers of README.md with `text`."""
    readme = path.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(readme):
        raise ValueError(f"{path}: no {README_START} ... {README_END} block to update")
    block = (f"{README_START}\n<!-- generated by `graphk bench --update-readme` from the "
             f"run of `{command}`; edits here are overwritten -->\n{text}{README_END}")
    path.write_text(pattern.sub(lambda _: block, readme, count=1))
