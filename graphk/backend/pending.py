"""Names of the Keras backend whose issue is still open (loops, CTC, sparse tensors).

They exist so that Keras imports graphk as a backend; calling one raises
NotImplementedError naming what is missing.
"""
from __future__ import annotations


def _not_built(name: str, what: str):
    def missing(*args, **kwargs):
        raise NotImplementedError(f"K.{name}: {what} are not built in graphk yet")
    missing.__name__ = name
    missing.__doc__ = f"Not built yet: {what}."
    return missing


rnn = _not_built("rnn", "symbolic loops (rnn, map_fn, foldl, foldr)")
map_fn = _not_built("map_fn", "symbolic loops (rnn, map_fn, foldl, foldr)")
foldl = _not_built("foldl", "symbolic loops (rnn, map_fn, foldl, foldr)")
foldr = _not_built("foldr", "symbolic loops (rnn, map_fn, foldl, foldr)")
ctc_label_dense_to_sparse = _not_built("ctc_label_dense_to_sparse", "CTC and sparse tensors")
ctc_batch_cost = _not_built("ctc_batch_cost", "CTC")
ctc_decode = _not_built("ctc_decode", "CTC")
to_dense = _not_built("to_dense", "sparse tensors")

__all__ = ["rnn", "map_fn", "foldl", "foldr", "ctc_label_dense_to_sparse", "ctc_batch_cost",
           "ctc_decode", "to_dense"]
