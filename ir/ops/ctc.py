"""CTC (connectionist temporal classification): the loss and the two decoders.

Conventions are TensorFlow's, which Keras 2.3.1 exposes: the inputs are
*logits*, normalized here with a log-softmax over the classes, and the blank
is the last class (num_classes - 1). Tensors are batch-major,
(batch, time, classes), as Keras holds them (TensorFlow's kernels are
time-major; nothing else differs). Only the first `input_length[b]` steps
and `label_length[b]` labels of item b are read.

`ctc_loss` is one fused op: the forward (alpha) recursion in log space,
vectorized over the batch and the extended label positions, one loop step
per time step. Its gradient is its own op, `ctc_loss_grad`, which runs
forward-backward and gives softmax(logits) - posterior occupancy of each
class, the closed form TensorFlow uses. Training therefore runs the alpha
recursion twice; in exchange evaluating the loss alone never pays for beta.
The gradient op has no gradient of its own (second order raises). Inputs
TensorFlow rejects (a label that is the blank or out of range, lengths out
of range, labels that need more steps than the input has) raise ValueError
naming the batch item.

The decoders return dense int64 paths padded with -1 (what Keras makes of
TensorFlow's sparse results). The beam search is the CTC prefix beam search
TensorFlow's decoder implements (same recursions, log-softmax inputs, top
`beam_width` prefixes kept per step); it may differ from TensorFlow's only
in how exact ties are broken. Its per-step arithmetic is vectorized over
(beams, classes); the prefix bookkeeping is Python, one batch item at a
time. Its paths come out as one (top_paths, batch, width) tensor, which
`ctc_path` splits, each path trimmed to its own width as TensorFlow sizes it.
"""
from __future__ import annotations

import numpy as np

from ..dtypes import require_float, require_integer
from ..shapes import ShapeError, SymDim, format_shape, merge_dim
from ..types import TensorType
from .kernels import ignoring_underflow, in_float32, log_softmax
from .registry import NOT_DIFFERENTIABLE, REQUIRED, OpDef, Sample, apply, register

# --- type rules ------------------------------------------------------------------------------


def _check_logits(logits: TensorType) -> None:
    if logits.ndim != 3:
        raise ShapeError(f"logits must be a float tensor (batch, time, classes), got {logits}")
    require_float(logits.dtype, "logits", "tensor (batch, time, classes)")


def _check_lengths(lengths: TensorType, batch, what: str):
    if lengths.ndim != 1:
        raise ShapeError(f"{what} must be an integer vector (batch,), got {lengths}")
    require_integer(lengths.dtype, what, "vector (batch,)")
    return merge_dim(batch, lengths.shape[0], f"batch size and {what} length")


def _loss_inputs_batch(logits, labels, input_length, label_length):
    """The batch dim all four inputs share (ShapeError naming the one that differs)."""
    _check_logits(logits)
    if labels.ndim != 2:
        raise ShapeError(f"labels must be an integer matrix (batch, max_label_length), "
                         f"got {labels}")
    require_integer(labels.dtype, "labels", "matrix (batch, max_label_length)")
    try:
        batch = merge_dim(logits.shape[0], labels.shape[0])
    except ShapeError:
        raise ShapeError(f"logits {format_shape(logits.shape)} and labels "
                         f"{format_shape(labels.shape)} have different batch sizes") from None
    batch = _check_lengths(input_length, batch, "input_length")
    return _check_lengths(label_length, batch, "label_length")


def _loss_infer(logits, labels, input_length, label_length):
    batch = _loss_inputs_batch(logits, labels, input_length, label_length)
    return TensorType(logits.dtype, (batch,))


def _loss_grad_infer(logits, labels, input_length, label_length, g):
    batch = _loss_inputs_batch(logits, labels, input_length, label_length)
    if g.ndim > 1:
        raise ShapeError(f"the cotangent must have the loss's shape (batch,), got {g}")
    if g.ndim:
        merge_dim(batch, g.shape[0], "cotangent and batch sizes")
    return logits


# --- the forward-backward algorithm ------------------------------------------------------------


class _Lattice:
    """The CTC lattice of a batch: extended labels l' = (blank, l1, blank, l2, ..., blank).

    `ext` (batch, S) are the extended labels (blank past each item's end),
    `skip` (batch, S) marks positions reachable from two back (a label
    differing from the label before the blank between them), `emit`
    (batch, time, S) the log-probability of emitting l'[s] at t.
    """

    def __init__(self, logits, labels, input_length, label_length):
        batch, time, classes = logits.shape
        self.blank = classes - 1
        self.input_length = np.asarray(input_length, dtype=np.int64)
        self.label_length = np.asarray(label_length, dtype=np.int64)
        self.log_probs = log_softmax(logits)
        self._validate(labels, time)
        max_labels = labels.shape[1]
        in_label = np.arange(max_labels) < self.label_length[:, None]
        ext = np.full((batch, 2 * max_labels + 1), self.blank, dtype=np.int64)
        ext[:, 1::2] = np.where(in_label, labels, self.blank)
        self.ext = ext
        self.skip = np.zeros(ext.shape, dtype=bool)
        self.skip[:, 2:] = (ext[:, 2:] != self.blank) & (ext[:, 2:] != ext[:, :-2])
        self.emit = np.take_along_axis(
            self.log_probs, np.broadcast_to(ext[:, None, :], (batch, time, ext.shape[1])), axis=2)

    def _validate(self, labels, time) -> None:
        """TensorFlow's checks, as errors naming the batch item."""
        classes = self.blank + 1
        for name, lengths, limit in (("input_length", self.input_length, time),
                                     ("label_length", self.label_length, labels.shape[1])):
            bad = np.flatnonzero((lengths < 0) | (lengths > limit))
            if bad.size:
                raise ValueError(f"{name}[{bad[0]}] = {lengths[bad[0]]} is outside [0, {limit}]")
        in_label = np.arange(labels.shape[1]) < self.label_length[:, None]
        bad = np.argwhere(in_label & ((labels < 0) | (labels >= self.blank)))
        if bad.size:
            b, i = bad[0]
            raise ValueError(f"label {labels[b, i]} of batch item {b} is not a class in "
                             f"[0, {self.blank}) (there are {classes} classes and the last, "
                             f"{self.blank}, is the blank)")
        repeats = np.sum(in_label[:, 1:] & (labels[:, 1:] == labels[:, :-1]), axis=1)
        required = self.label_length + repeats
        short = np.flatnonzero(required > self.input_length)
        if short.size:
            b = short[0]
            raise ValueError(f"not enough time steps for the labels of batch item {b}: they need "
                             f"{required[b]} (labels plus repeats), input_length is "
                             f"{self.input_length[b]}")

    def forward(self, keep_all: bool):
        """log P(the loss) per item; with keep_all, also alpha (batch, time, S)."""
        batch, time, positions = self.emit.shape
        padded = np.full((batch, positions + 2), -np.inf, dtype=self.emit.dtype)
        padded[:, 2] = 0.0  # a virtual step before t = 0: in position 0 with probability 1
        current = padded[:, 2:]
        alphas = np.empty(self.emit.shape, dtype=self.emit.dtype) if keep_all else None
        for t in range(time):
            stepped = np.logaddexp(current, padded[:, 1:-1])
            stepped = np.logaddexp(stepped, np.where(self.skip, padded[:, :-2], -np.inf))
            stepped += self.emit[:, t]
            live = (t < self.input_length)[:, None]
            padded[:, 2:] = np.where(live, stepped, current)
            if keep_all:
                alphas[:, t] = current
        return self._total(current), alphas

    def _total(self, last) -> np.ndarray:
        """log P: the paths ending on the last label or on the blank after it."""
        rows = np.arange(last.shape[0])
        end = 2 * self.label_length
        on_blank = last[rows, end]
        on_label = np.where(end > 0, last[rows, np.maximum(end - 1, 0)], -np.inf)
        return np.logaddexp(on_blank, on_label)

    def backward(self) -> np.ndarray:
        """beta (batch, time, S): log P(the rest | in position s at t), emission at t excluded."""
        batch, time, positions = self.emit.shape
        rows = np.arange(batch)
        final = np.full((batch, positions), -np.inf, dtype=self.emit.dtype)
        end = 2 * self.label_length
        final[rows, end] = 0.0
        final[rows[end > 0], end[end > 0] - 1] = 0.0
        skip_next = np.zeros(self.skip.shape, dtype=bool)
        skip_next[:, :-2] = self.skip[:, 2:]
        padded = np.full((batch, positions + 2), -np.inf, dtype=self.emit.dtype)
        betas = np.empty(self.emit.shape, dtype=self.emit.dtype)
        if time == 0:
            return betas
        betas[:, time - 1] = final
        for t in range(time - 2, -1, -1):
            padded[:, :-2] = betas[:, t + 1] + self.emit[:, t + 1]
            stepped = np.logaddexp(padded[:, :-2], padded[:, 1:-1])
            stepped = np.logaddexp(stepped, np.where(skip_next, padded[:, 2:], -np.inf))
            at_end = (t >= self.input_length - 1)[:, None]
            betas[:, t] = np.where(at_end, final, stepped)
        return betas


@ignoring_underflow
def _loss_kernel(logits, labels, input_length, label_length):
    lattice = _Lattice(in_float32(logits), labels, input_length, label_length)
    log_likelihood, _ = lattice.forward(keep_all=False)
    return (-log_likelihood).astype(logits.dtype)


@ignoring_underflow
def _loss_grad_kernel(logits, labels, input_length, label_length, g):
    """d loss / d logits = softmax - sum over positions of class c of the posterior at (t, s)."""
    lattice = _Lattice(in_float32(logits), labels, input_length, label_length)
    log_likelihood, alphas = lattice.forward(keep_all=True)
    betas = lattice.backward()
    occupancy = np.exp(alphas + betas - log_likelihood[:, None, None])
    classes = logits.shape[2]
    one_hot = (lattice.ext[:, :, None] == np.arange(classes)).astype(occupancy.dtype)
    grad = np.exp(lattice.log_probs) - np.matmul(occupancy, one_hot)
    live = np.arange(logits.shape[1]) < lattice.input_length[:, None]
    grad *= live[:, :, None]
    grad *= np.reshape(g, (-1, 1, 1)) if np.ndim(g) else g
    return grad.astype(logits.dtype)


def _loss_grad(node, g):
    logits, labels, input_length, label_length = node.inputs
    return ctc_loss_grad(logits, labels, input_length, label_length, g), None, None, None


def _second_order(node, h):
    raise NotImplementedError("second-order gradients of the CTC loss are not implemented "
                              "(ctc_loss_grad has no gradient rule of its own)")


def _loss_sample(rng):
    """Two items: labels with a repeat (needing a blank between) and a shorter one."""
    logits = rng.uniform(-2, 2, (2, 6, 4))
    labels = np.array([[1, 1, 0], [2, 0, 2]], dtype=np.int32)
    return [logits, labels, np.array([6, 4], dtype=np.int32), np.array([3, 2], dtype=np.int32)]


def _loss_grad_sample(rng):
    return _loss_sample(rng) + [rng.uniform(0.5, 1.5, (2,))]


register(OpDef(
    "ctc_loss", "ctc", infer=_loss_infer, kernel=_loss_kernel, grad=_loss_grad,
    samples=(Sample(((2, 6, 4), (2, 3), (2,), (2,)), make=_loss_sample,
                    differentiable_inputs=(0,)),),
    doc="-log P(labels | logits) per batch item (tf.nn.ctc_loss on batch-major logits; "
        "blank = last class)."))

register(OpDef(
    "ctc_loss_grad", "ctc", infer=_loss_grad_infer, kernel=_loss_grad_kernel,
    grad=_second_order,
    samples=(Sample(((2, 6, 4), (2, 3), (2,), (2,), (2,)), make=_loss_grad_sample,
                    differentiable_inputs=()),),
    doc="g * d ctc_loss / d logits, by forward-backward."))


def ctc_loss(logits, labels, input_length, label_length):
    return apply("ctc_loss", [logits, labels, input_length, label_length])


def ctc_loss_grad(logits, labels, input_length, label_length, g):
    return apply("ctc_loss_grad", [logits, labels, input_length, label_length, g])


# --- greedy (best path) decoding -----------------------------------------------------------------


def _decoder_batch(logits, input_length):
    _check_logits(logits)
    return _check_lengths(input_length, logits.shape[0], "input_length")


def _check_decoder_lengths(input_length, time) -> np.ndarray:
    lengths = np.asarray(input_length, dtype=np.int64)
    bad = np.flatnonzero((lengths < 0) | (lengths > time))
    if bad.size:
        raise ValueError(f"input_length[{bad[0]}] = {lengths[bad[0]]} is outside [0, {time}]")
    return lengths


def _pad_paths(paths: list, width: int | None = None) -> np.ndarray:
    """Label sequences as an int64 matrix padded with -1 (Keras' dense decode result)."""
    width = max((len(p) for p in paths), default=0) if width is None else width
    result = np.full((len(paths), width), -1, dtype=np.int64)
    for row, path in enumerate(paths):
        result[row, :len(path)] = path
    return result


def _greedy_kernel(logits, input_length):
    """Argmax per step, repeats merged, blanks dropped; log_prob = -sum of the max logits."""
    batch, time, classes = logits.shape
    lengths = _check_decoder_lengths(input_length, time)
    best = np.argmax(logits, axis=2)
    live = np.arange(time) < lengths[:, None]
    previous = np.full_like(best, -1)
    previous[:, 1:] = best[:, :-1]
    keep = live & (best != classes - 1) & (best != previous)
    counts = keep.sum(axis=1)
    decoded = np.full((batch, counts.max(initial=0)), -1, dtype=np.int64)
    positions = np.cumsum(keep, axis=1) - 1
    decoded[np.nonzero(keep)[0], positions[keep]] = best[keep]
    log_prob = -np.sum(np.where(live, np.max(logits, axis=2), 0), axis=1, keepdims=True)
    return decoded, log_prob.astype(logits.dtype)


def _greedy_infer(logits, input_length):
    batch = _decoder_batch(logits, input_length)
    return TensorType("int64", (batch, SymDim())), TensorType(logits.dtype, (batch, 1))


register(OpDef(
    "ctc_greedy_decoder", "ctc", num_outputs=2, infer=_greedy_infer, kernel=_greedy_kernel,
    grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((3, 5, 4), (3,)), make=lambda rng: [
        rng.uniform(-2, 2, (3, 5, 4)), np.array([5, 2, 0], dtype=np.int32)]),),
    doc="Best-path decoding (tf.nn.ctc_greedy_decoder): paths padded with -1, and "
        "-sum over steps of the largest logit."))


def ctc_greedy_decoder(logits, input_length) -> tuple:
    return apply("ctc_greedy_decoder", [logits, input_length])


# --- prefix beam search ---------------------------------------------------------------------------


class _Beams:
    """The live prefixes of one batch item with log P(prefix, ending in blank / in a label).

    `last` holds each prefix's last label (-1 for the empty prefix).
    """

    def __init__(self):
        self.prefixes = [()]
        self.last = np.full(1, -1)
        self.blank = np.zeros(1)
        self.label = np.full(1, -np.inf)

    @property
    def total(self) -> np.ndarray:
        return np.logaddexp(self.blank, self.label)

    def step(self, log_probs: np.ndarray, beam_width: int) -> None:
        """Advance one time step and keep the beam_width most probable prefixes."""
        blank_class = log_probs.shape[0] - 1
        total, last = self.total, self.last
        nonempty = np.flatnonzero(last >= 0)
        # Staying on a prefix: a blank after anything, or the last label repeated.
        stay_blank = total + log_probs[blank_class]
        stay_label = np.full(len(last), -np.inf)
        stay_label[nonempty] = self.label[nonempty] + log_probs[last[nonempty]]
        # Extending prefix i by label k; a repeated label needs a blank in between.
        extend = total[:, None] + log_probs[None, :blank_class]
        extend[nonempty, last[nonempty]] = self.blank[nonempty] + log_probs[last[nonempty]]
        # An extension that is itself a live prefix adds to that prefix instead.
        position = {p: i for i, p in enumerate(self.prefixes)}
        children, parents = [], []
        for j in nonempty.tolist():
            parent = position.get(self.prefixes[j][:-1])
            if parent is not None:
                children.append(j)
                parents.append(parent)
        if children:
            labels = last[children]
            stay_label[children] = np.logaddexp(stay_label[children], extend[parents, labels])
            extend[parents, labels] = -np.inf
        self._select(stay_blank, stay_label, extend, beam_width)

    def _select(self, stay_blank, stay_label, extend, beam_width: int) -> None:
        """Keep the most probable of the stayed and the extended prefixes (ties: first listed)."""
        count, labels = extend.shape
        scores = np.concatenate([np.logaddexp(stay_blank, stay_label), extend.reshape(-1)])
        if beam_width < scores.size:
            order = np.argpartition(-scores, beam_width - 1)[:beam_width]
            order = order[np.lexsort((order, -scores[order]))]
        else:
            order = np.argsort(-scores, kind="stable")
        order = order[scores[order] > -np.inf]
        self.blank = np.concatenate([stay_blank, np.full(extend.size, -np.inf)])[order]
        self.label = np.concatenate([stay_label, extend.reshape(-1)])[order]
        self.last = np.concatenate([self.last, np.tile(np.arange(labels), count)])[order]
        old = self.prefixes
        self.prefixes = [old[i] if i < count else old[(i - count) // labels] + (k,)
                         for i, k in zip(order.tolist(), self.last.tolist())]


def _merge_repeats(path: tuple) -> tuple:
    return tuple(k for i, k in enumerate(path) if i == 0 or k != path[i - 1])


def _beam_kernel(logits, input_length, beam_width, top_paths, merge_repeated):
    batch, time, classes = logits.shape
    lengths = _check_decoder_lengths(input_length, time)
    log_probs = log_softmax(logits.astype(np.float64))
    paths, scores = [], np.empty((batch, top_paths))
    for b in range(batch):
        beams = _Beams()
        for t in range(lengths[b]):
            beams.step(log_probs[b, t], beam_width)
        if len(beams.prefixes) < top_paths:
            raise ValueError(f"batch item {b} has only {len(beams.prefixes)} prefixes in its "
                             f"beam, fewer than top_paths={top_paths}")
        best = beams.prefixes[:top_paths]
        paths.append([_merge_repeats(p) if merge_repeated else p for p in best])
        scores[b] = beams.total[:top_paths]
    width = max((len(p) for item in paths for p in item), default=0)
    decoded = np.stack([_pad_paths([item[j] for item in paths], width)
                        for j in range(top_paths)]) if batch else \
        np.zeros((top_paths, 0, 0), dtype=np.int64)
    return decoded, scores.astype(logits.dtype)


def _beam_infer(logits, input_length, beam_width, top_paths, merge_repeated):
    batch = _decoder_batch(logits, input_length)
    if not (isinstance(beam_width, int) and isinstance(top_paths, int)
            and 1 <= top_paths <= beam_width):
        raise ValueError(f"need integers 1 <= top_paths <= beam_width, got top_paths="
                         f"{top_paths!r} and beam_width={beam_width!r}")
    return (TensorType("int64", (top_paths, batch, SymDim())),
            TensorType(logits.dtype, (batch, top_paths)))


def _beam_sample(rng):
    return [rng.uniform(-2, 2, (2, 5, 3)), np.array([5, 3], dtype=np.int32)]


register(OpDef(
    "ctc_beam_search_decoder", "ctc", num_outputs=2, infer=_beam_infer, kernel=_beam_kernel,
    attrs={"beam_width": 100, "top_paths": 1, "merge_repeated": False},
    grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((2, 5, 3), (2,)), {"beam_width": 4, "top_paths": 2}, make=_beam_sample),),
    doc="Prefix beam search (tf.nn.ctc_beam_search_decoder): paths (top_paths, batch, width) "
        "padded with -1, and their log-probabilities (batch, top_paths)."))


def ctc_beam_search_decoder(logits, input_length, beam_width: int = 100, top_paths: int = 1,
                            merge_repeated: bool = False) -> tuple:
    return apply("ctc_beam_search_decoder", [logits, input_length], beam_width=int(beam_width),
                 top_paths=int(top_paths), merge_repeated=bool(merge_repeated))


# --- one path of a beam search --------------------------------------------------------------------


def _path_infer(paths, index):
    if paths.ndim != 3 or paths.dtype != "int64":
        raise ShapeError(f"paths must be int64 (top_paths, batch, width), got {paths}")
    if isinstance(paths.shape[0], int) and not 0 <= index < paths.shape[0]:
        raise ShapeError(f"path {index} is out of range for {paths.shape[0]} paths")
    return TensorType("int64", (paths.shape[1], SymDim()))


def _path_kernel(paths, index):
    """Path `index`, as wide as its longest sequence (TensorFlow sizes each path's own)."""
    path = paths[index]
    width = int(np.max(np.sum(path >= 0, axis=1), initial=0))
    return np.ascontiguousarray(path[:, :width])


register(OpDef(
    "ctc_path", "ctc", infer=_path_infer, kernel=_path_kernel, attrs={"index": REQUIRED}, view=True,
    grad=NOT_DIFFERENTIABLE,
    samples=(Sample(((2, 3, 4),), {"index": 1}, dtypes=("int64",), make=lambda rng: [
        np.array([[[0, 1, 2, -1], [1, -1, -1, -1], [0, 0, 0, 0]],
                  [[2, -1, -1, -1], [-1, -1, -1, -1], [1, 1, -1, -1]]], dtype=np.int64)]),),
    doc="One path of ctc_beam_search_decoder's result, trimmed to its own width."))


def ctc_path(paths, index: int):
    return apply("ctc_path", [paths], index=int(index))
