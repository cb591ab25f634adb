"""ir/rewrite.py: the bottom-up rebuild, build/clone, and subgraph outlining."""
from __future__ import annotations

import numpy as np
import pytest
from graphk.ir import Graph, ShapeError, SymDim, TensorType, parse, verify
from graphk.ir.ops import elementwise as ew
from graphk.ir.ops.leaf import constant, constant_value, placeholder
from graphk.ir.rewrite import build, clone, close_subgraph, rebuild, rewire


def _x(shape=(None, 3), name="x"):
    return placeholder(TensorType("float32", tuple(SymDim() if d is None else d for d in shape)),
                       name=name, location="user.py:1")


def _drop_add_zero(node, inputs):
    """add(x, 0) -> x (test rule; ignores IEEE -0.0 on purpose, it is only a test)."""
    if node.op.name == "add":
        zero = constant_value(inputs[1])
        if zero is not None and not zero.any() and inputs[0].type == node.outputs[0].type:
            return (inputs[0],)
    return None


def test_rebuild_without_changes_shares_every_node():
    x = _x()
    y = ew.tanh(ew.mul(x, x))
    graph = Graph([x], [y])
    result = rebuild(graph, lambda node, inputs: None)
    assert result.outputs[0] is y
    assert result.inputs == graph.inputs and result.name == graph.name


def test_rebuild_replaces_and_clones_users_with_their_location():
    x = _x()
    z = ew.add(x, constant(np.float32(0)))
    y = ew.tanh(z)
    w = ew.exp(x)  # does not read the replaced value: shared
    graph = Graph([x], [y, w], name="f")
    result = rebuild(graph, _drop_add_zero)
    verify(result)
    new_y, new_w = result.outputs
    assert new_w is w
    assert new_y is not y and new_y.node.inputs == (x,)
    assert new_y.location == y.location
    assert "add" not in result.to_text()


def test_rebuild_maps_updates_and_keeps_targets():
    from graphk.ir.ops.leaf import variable

    v = variable(np.zeros(3, np.float32), name="v", location="user.py:2")
    new = ew.add(ew.add(v, constant(np.float32(0))), constant(np.float32(1)))
    graph = Graph([], [], [(v, new)])
    result = rebuild(graph, _drop_add_zero)
    target, value = result.updates[0]
    assert target is v and value.node.inputs[0] is v
    verify(result)


def test_rebuild_rejects_a_replacement_of_another_dtype():
    x = _x()
    y = ew.tanh(x)

    def bad(node, inputs):
        return (ew.cast(inputs[0], dtype="float64"),) if node.op.name == "tanh" else None
    with pytest.raises(ValueError, match="replacement float64"):
        rebuild(Graph([x], [y]), bad)


def test_rebuild_is_iterative_on_long_chains():
    x = _x((4,))
    value = x
    for _ in range(5000):  # far deeper than Python's recursion limit
        value = ew.add(value, constant(np.float32(0)))
    result = rebuild(Graph([x], [value]), _drop_add_zero)
    assert result.outputs[0] is x


def test_build_uses_the_given_location_and_locates_errors():
    a, b = _x((2, 3), "a"), _x((2, 4), "b")
    value = build("add", [a, a], {}, "model.py:7")
    assert value.location == "model.py:7" and value.type.shape == (2, 3)
    with pytest.raises(ShapeError, match="add at model.py:9"):
        build("add", [a, b], {}, "model.py:9")


def test_clone_keeps_recorded_types_unless_an_input_type_changed():
    x = _x((None, 3))
    y = ew.tanh(x)
    same = clone(y.node, [_x_like(x)])[0]
    assert same.type is y.type
    static = placeholder(TensorType("float32", (5, 3)), name="s")
    sharper = clone(y.node, [static])[0]
    assert sharper.type.shape == (5, 3) and sharper.location == y.location


def _x_like(x):
    return placeholder(x.type, name="x2")


def test_close_subgraph_and_rewire_outline_a_body():
    x, w = _x((2, 3)), _x((2, 3), "w")
    inner = placeholder(TensorType("float32", (2, 3)), name="h")
    out = ew.tanh(ew.add(inner, w))
    captured_inner, captured, outputs = close_subgraph([inner], [out])
    assert captured == [w] and captured_inner[0].type == w.type
    body = Graph([inner] + captured_inner, outputs, name="body")
    verify(body)
    assert "w" in body.to_text()
    rewired = rewire([out], {inner: x})[0]
    assert rewired.node.inputs[0].node.inputs == (x, w)


def test_loop_module_uses_the_shared_helpers():
    from graphk.ir.ops import loop, loop_grad

    assert loop.close_subgraph is close_subgraph and loop_grad.rewire is rewire


def test_rebuild_on_parsed_text():
    graph = parse("""graph @f(%x) {
      %x = placeholder {name="x", default=none} : float32[?0,3]
      %0 = constant {value=dense<float32[]>0.0} : float32[]
      %1 = add(%x, %0) : float32[?0,3]
      %2 = neg(%1) : float32[?0,3]
      return %2
    }""")
    result = rebuild(graph, _drop_add_zero)
    verify(result)
    assert [n.op.name for n in result.nodes] == ["placeholder", "neg"]
