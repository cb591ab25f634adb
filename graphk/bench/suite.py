"""The registry of the suite's cases, in the order they run (W1 ... W8)."""
from __future__ import annotations

from . import compile_time, digits, training  # noqa: F401  (each registers its cases)
from .cases import CASES, SCALES

ORDER = ("W1-large", "W1-small", "W2", "W2-onehot", "W3", "W4", "W5-cold", "W5-disk", "W6", "W7",
         "W8-mlp", "W8-cnn", "W8-lstm")


def case(key: str):
    return CASES[key]


def sizes(scale: str) -> dict:
    return SCALES[scale]


def select(only: str | None) -> list:
    """Case keys for --only: a workload (W1), a case (W1-small), or a comma-separated list."""
    if not only:
        return list(ORDER)
    chosen = []
    for item in filter(None, (part.strip() for part in only.split(","))):
        matches = [key for key in ORDER if key == item or key.split("-")[0] == item.upper()
                   or key.lower() == item.lower()]
        if not matches:
            raise ValueError(f"--only: no workload {item!r}; known: {', '.join(ORDER)}")
        chosen.extend(k for k in matches if k not in chosen)
    return chosen
