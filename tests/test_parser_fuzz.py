"""Mutated and truncated IR text raises ParseError: never another exception, never a hang.

The default run mutates a graph's text a few hundred times with a fixed seed;
`python tests/test_parser_fuzz.py SEED COUNT` runs a longer campaign.
"""
import random
import signal
import sys

import numpy as np

from graphk import backend as K
from graphk.ir import parse
from graphk.ir.errors import ParseError

_ALPHABET = "%(){}[],:=@\"'?.-0123456789abcxyz \n#"


def _sample_text() -> str:
    """A graph with a loop body, a gradient, constants and an update: most of the syntax."""
    x = K.placeholder((None, 4), name="x")
    W = K.variable(np.ones((4, 3)), name="W")
    y = K.softmax(K.dot(x, W) + 1.0)
    g = K.gradients(K.sum(y), [W])[0]

    def step(xt, states):
        h = K.tanh(xt + states[0])
        return h, [h]

    x3, s0 = K.placeholder((None, 5, 4)), K.placeholder((None, 4))
    last, _, _ = K.rnn(step, x3, [s0])
    return str(K.function([x, x3, s0], [y, g, last], updates=[K.update_sub(W, g)]).ir)


def _mutate(text: str, rng: random.Random) -> str:
    chars = list(text)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:rng.randrange(len(text))]
    for _ in range(rng.randrange(1, 4)):
        position = rng.randrange(len(chars))
        if kind == 1:
            chars[position] = rng.choice(_ALPHABET)
        elif kind == 2:
            del chars[position]
        else:
            chars.insert(position, rng.choice(_ALPHABET))
    return "".join(chars)


def fuzz(seed: int, count: int, seconds_each: int = 5) -> list:
    """Parse `count` mutants; return the (text, exception) pairs that were not ParseError."""
    text, rng, failures = _sample_text(), random.Random(seed), []

    def hang(signum, frame):
        raise TimeoutError(f"parse took more than {seconds_each} s")

    previous = signal.signal(signal.SIGALRM, hang)
    try:
        for _ in range(count):
            mutant = _mutate(text, rng)
            signal.alarm(seconds_each)
            try:
                parse(mutant)
            except ParseError:
                pass
            except Exception as error:  # noqa: BLE001 -- any other exception is the finding
                failures.append((mutant, error))
            finally:
                signal.alarm(0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return failures


def test_mutated_ir_text_raises_only_parse_errors():
    failures = fuzz(seed=0, count=300)
    assert not failures, [f"{type(e).__name__}: {e}" for _, e in failures[:5]]


def test_parse_error_names_line_and_column():
    text = _sample_text()
    broken = text.replace("= add(", "= add(%", 1) if "= add(" in text else text[:-3]
    try:
        parse(broken)
    except ParseError as error:
        assert "line" in str(error)
    else:
        raise AssertionError("a broken graph parsed")


if __name__ == "__main__":
    seed, count = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (1, 20000)
    found = fuzz(seed, count)
    print(f"{count} mutants, {len(found)} non-ParseError exceptions")
    for _, error in found[:20]:
        print(f"  {type(error).__name__}: {error}")
    sys.exit(1 if found else 0)
