"""A symbolic dim merged with a known size is bound to it (ir/shapes.py), process-wide."""
from __future__ import annotations

import numpy as np
import pytest
from graphk import backend as K
from graphk.ir import FeedError, ShapeError, SymDim, TensorType
from graphk.ir.shapes import bind, broadcast_shapes, merge_dim, merge_shapes, unify


def test_merge_dim_binds_a_symbol_and_every_type_holding_it_sees_the_size():
    a = SymDim()
    held = TensorType("float32", (a, 3))
    assert held.int_shape == (None, 3)
    assert merge_dim(a, 10) == 10
    assert held.shape == (10, 3) and held.int_shape == (10, 3) and held.is_static
    assert str(held) == "float32[10,3]"


def test_binding_travels_through_unification_both_ways():
    a, b, c = SymDim(), SymDim(), SymDim()
    bind(b, 5)
    unify(a, b)
    assert TensorType("float32", (a,)).shape == (5,)
    unify(c, a)  # c's root gets the size when it becomes the root
    assert TensorType("float32", (c,)).shape == (5,)


def test_conflicting_sizes_are_shape_errors():
    a, b = SymDim(), SymDim()
    merge_dim(a, 10)
    with pytest.raises(ShapeError, match="10 and 11"):
        merge_dim(a, 11)
    bind(b, 11)
    with pytest.raises(ShapeError, match="differ"):
        unify(a, b)
    with pytest.raises(ShapeError):
        merge_shapes((a,), (b,), "x and y")


def test_broadcasting_never_binds():
    a = SymDim()
    assert broadcast_shapes((a,), (10,)) == (10,)
    assert TensorType("float32", (a,)).shape[0] is a  # may still be 1 at run time


def test_keras_targets_take_the_width_of_the_logits_and_feeds_are_checked():
    target, logits = K.placeholder((None, None)), K.placeholder((None, 10))
    loss = K.categorical_crossentropy(target, logits, from_logits=True)
    assert K.int_shape(target) == (None, 10)
    assert "float32[?0,10]" in str(target.type).replace(str(target.type.shape[0]), "?0")
    fn = K.function([target, logits], [loss])
    good = fn([np.eye(10, dtype=np.float32)[:4], np.zeros((4, 10), np.float32)])
    np.testing.assert_allclose(good[0], np.log(10.0) * np.ones(4), rtol=1e-6)
    with pytest.raises(FeedError, match=r"expects shape \(\?\d+, 10\).*got shape \(4, 11\)"):
        fn([np.zeros((4, 11), np.float32), np.zeros((4, 10), np.float32)])


def test_a_broadcast_partner_still_accepts_size_one_feeds():
    x, y = K.placeholder((None,)), K.placeholder((10,))
    fn = K.function([x, y], [x + y])
    result = fn([np.ones(1, np.float32), np.arange(10, dtype=np.float32)])[0]
    np.testing.assert_allclose(result, np.arange(10) + 1.0)
