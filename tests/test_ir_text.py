"""The IR text format (printer and parser) and the verifier.

The registry-wide round trip loops over every registered op and its samples,
so each new op family is checked by this file without touching it.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from graphk.ir import (
    REGISTRY,
    Graph,
    OpDef,
    ParseError,
    Sample,
    SymDim,
    TensorType,
    Variable,
    VerifyError,
    parse,
    verify,
)
from graphk.ir.ops.leaf import constant, placeholder, variable
from graphk.ir.ops.registry import apply, make_node

# --- helpers ---------------------------------------------------------------------------


def _placeholder(shape, name="x", dtype="float32", location=None):
    dims = tuple(SymDim() if d is None else d for d in shape)
    return placeholder(TensorType(dtype, dims), name=name, location=location)


def _round_trip(graph: Graph) -> Graph:
    """Parse the printed graph, checking both round-trip promises; return the parsed graph."""
    full = graph.to_text(full_constants=True)
    parsed = parse(full)
    assert parsed == graph
    assert str(parsed) == str(graph)
    if "elided(" not in str(graph):
        assert str(parse(str(graph))) == str(graph)
    return parsed


def _sample_specs(sample: Sample) -> list[tuple[tuple, str]]:
    """(shape, dtype) of each input a sample describes."""
    if sample.make is not None:
        arrays = [np.asarray(a) for a in sample.make(np.random.default_rng(0))]
        return [(a.shape, a.dtype.name) for a in arrays]
    dtypes = sample.dtypes or ("float32",) * len(sample.shapes)
    return list(zip(sample.shapes, dtypes))


def _sample_graph(op: OpDef, sample: Sample, symbolic: bool) -> Graph:
    """Placeholders of the sample's types fed to the op; with `symbolic`, leading dims unknown.

    Each input gets its own symbol (as tests/harness.py does), so the op's
    rule has to unify them where it needs them equal.
    """
    inputs = []
    for i, (shape, dtype) in enumerate(_sample_specs(sample)):
        dims = tuple(shape)
        if symbolic and dims:
            dims = (SymDim(),) + dims[1:]
        inputs.append(placeholder(TensorType(dtype, dims), name=f"x{i}", location="sample.py:1"))
    result = apply(op.name, inputs, location="sample.py:2", **sample.attrs)
    outputs = list(result) if isinstance(result, tuple) else [result]
    return Graph(inputs, outputs, name=op.name)


def _registry_cases():
    for op in REGISTRY.values():
        if op.leaf:
            continue
        for index, sample in enumerate(op.samples):
            yield pytest.param(op.name, index, False, id=f"{op.name}-{index}")
            if sample.symbolic and any(len(s) for s in sample.shapes):
                yield pytest.param(op.name, index, True, id=f"{op.name}-{index}-symbolic")


# --- the whole registry ----------------------------------------------------------------

@pytest.mark.parametrize("op_name, index, symbolic", list(_registry_cases()))
def test_registry_op_round_trips_and_verifies(op_name, index, symbolic):
    op = REGISTRY[op_name]
    graph = _sample_graph(op, op.samples[index], symbolic)
    verify(graph)
    parsed = _round_trip(graph)
    verify(parsed)
    assert [v.type.int_shape for v in parsed.outputs] == [v.type.int_shape for v in graph.outputs]


def test_every_non_leaf_op_has_a_sample():
    missing = sorted(op.name for op in REGISTRY.values() if not op.leaf and not op.samples)
    assert not missing, f"ops without samples (registry tests skip them): {missing}"


# --- leaves, constants, updates ----------------------------------------------------------

def test_leaves_print_in_the_documented_form_and_parse_back():
    x = placeholder(TensorType("float32", (SymDim(), 3)), name="x", location="model.py:8",
                    default=np.zeros((2, 3)))
    w = variable(np.ones((3, 4)), name="W", dtype="float32", location="model.py:9")
    one = constant(np.float32(1.0), location="model.py:10")
    graph = Graph([x], [apply("add", [x, one], location="model.py:12"), w])
    graph.nodes[2].location = None  # a node without a location prints no loc(...)
    assert str(graph).splitlines() == [
        "graph @main(%x) {",
        ('  %x = placeholder {name="x", default=dense<float32[2,3]>[[0.0, 0.0, 0.0], '
         '[0.0, 0.0, 0.0]]} : float32[?0,3] loc("model.py:8")'),
        '  %0 = constant {value=dense<float32[]>1.0} : float32[] loc("model.py:10")',
        '  %1 = add(%x, %0) : float32[?0,3]',
        '  %W = variable {name="W"} : float32[3,4] loc("model.py:9")',
        "  return %1, %W",
        "}",
    ]
    parsed = _round_trip(graph)
    x2, (sum2, w2) = parsed.inputs[0], parsed.outputs
    assert x2.name == "x" and x2.node.attrs["default"].shape == (2, 3)
    assert isinstance(w2, Variable) and w2.name == "W"
    assert w2.storage.shape == (3, 4) and w2.storage.dtype == np.float32
    value = sum2.node.inputs[1].node.attrs["value"]
    assert value == 1.0 and value.dtype == np.float32 and not value.flags.writeable


def test_without_locations_no_loc_is_printed():
    x = _placeholder((3,), location="model.py:1")
    graph = Graph([x], [apply("neg", [x], location="model.py:2")])
    assert "loc(" not in graph.to_text(locations=False)
    assert 'loc("model.py:2")' in str(graph)


def test_constants_up_to_16_elements_print_inline_and_larger_ones_elide():
    small = constant(np.arange(16, dtype="int32").reshape(4, 4), location="c.py:1")
    large = constant(np.linspace(0, 1, 17).astype("float32"), location="c.py:2")
    graph = Graph([], [small, large])
    text = str(graph)
    assert "dense<int32[4,4]>[[0, 1, 2, 3], [4, 5, 6, 7]," in text
    assert 'dense<float32[17]>elided(sha1="' in text
    with pytest.raises(ParseError, match=r"full_constants=True") as caught:
        parse(text)
    assert caught.value.line == 3
    parsed = _round_trip(graph)
    np.testing.assert_array_equal(parsed.outputs[1].node.attrs["value"],
                                  large.node.attrs["value"])


def test_constant_elements_print_in_their_own_dtype_and_read_back_exactly():
    arrays = [np.array([0.1, -0.0, np.inf, -np.inf, np.nan, 1e-7, 3e38], dtype="float32"),
              np.array([0.1, 65504.0], dtype="float16"),
              np.array([[True, False]]),
              np.array([-128, 127], dtype="int8"),
              np.zeros((0, 3), dtype="float64"),
              np.zeros((2, 0), dtype="uint8"),
              np.array(2**40, dtype="int64")]
    graph = Graph([], [constant(a, location="c.py:1") for a in arrays])
    text = str(graph)
    assert "dense<float32[7]>[0.1, -0.0, inf, -inf, nan, 1e-07, 3e+38]" in text
    assert "dense<bool[1,2]>[[true, false]]" in text
    assert "dense<float64[0,3]>[]" in text and "dense<uint8[2,0]>[[], []]" in text
    parsed = _round_trip(graph)
    for original, value in zip(arrays, parsed.outputs):
        np.testing.assert_array_equal(value.node.attrs["value"], original)
        assert value.node.attrs["value"].dtype == original.dtype


def test_updates_print_one_line_per_pair_and_parse_to_variables():
    w = variable(np.zeros(3), name="W", dtype="float32", location="m.py:1")
    b = variable(np.zeros(3), name="b", dtype="float32", location="m.py:2")
    x = _placeholder((3,), location="m.py:3")
    graph = Graph([x], [], [(w, apply("add", [w, x], location="m.py:4")),
                            (b, apply("sub", [b, x], location="m.py:5"))])
    lines = str(graph).splitlines()
    assert lines[-4:] == ["  return", "  update %W = %0", "  update %b = %1", "}"]
    parsed = _round_trip(graph)
    verify(parsed)
    assert [t.name for t, _ in parsed.updates] == ["W", "b"]
    assert all(isinstance(t, Variable) for t, _ in parsed.updates)


def test_value_names_are_sanitized_deduplicated_and_kept_apart_from_numbers():
    x = _placeholder((3,), name="dense_1/input:0", location="n.py:1")
    y = _placeholder((3,), name="dense_1/input:0", location="n.py:2")
    z = _placeholder((3,), name="7", location="n.py:3")
    total = apply("add", [apply("add", [x, y], location="n.py:4"), z], location="n.py:5")
    text = str(Graph([x, y, z], [total]))
    assert text.splitlines()[0] == "graph @main(%dense_1_input_0, %dense_1_input_0.1, %_7) {"
    assert "%1 = add(%0, %_7)" in text
    parsed = _round_trip(Graph([x, y, z], [total]))
    assert [v.name for v in parsed.inputs] == ["dense_1_input_0", "dense_1_input_0.1", "_7"]
    assert parsed.outputs[0].name is None


def test_graph_names_that_are_not_plain_identifiers_are_quoted():
    x = _placeholder((2,), location="g.py:1")
    graph = Graph([x], [x], name="train step/1")
    assert str(graph).startswith('graph @"train step/1"(%x) {')
    assert _round_trip(graph).name == "train step/1"


# --- attribute values and multiple outputs -----------------------------------------------

_ATTR_VALUES = {
    "nothing": None, "yes": True, "no": False, "count": -3, "big": 2**70,
    "rate": 0.1, "tiny": 1e-07, "top": float("inf"), "bottom": float("-inf"),
    "undefined": float("nan"), "label": 'say "hi"\n\u00e9', "empty": (), "one": (1,),
    "nested": ((1, 2), ("a", None), (0.5, True)), "dtype": "int32",
    "table": np.array([[1.5, 2.0], [3.0, 4.0]], dtype="float32"),
    "index": (slice(None, -1, None), Ellipsis, 2),
}


@pytest.fixture
def test_ops(monkeypatch):
    """Two throwaway ops: one taking every kind of attribute value, one with two outputs."""
    identity = OpDef("test_attrs", "test", infer=lambda x, **attrs: x, kernel=None,
                     attrs=dict(_ATTR_VALUES), samples=(Sample(((3,),)),))
    split = OpDef("test_split", "test", kernel=None, num_outputs=2, attrs={"parts": 2},
                  infer=lambda x, parts: (TensorType(x.dtype, (x.shape[0], parts)),
                                          TensorType("int32", ())),
                  samples=(Sample(((3,),)),))
    monkeypatch.setitem(REGISTRY, "test_attrs", identity)
    monkeypatch.setitem(REGISTRY, "test_split", split)


def test_every_kind_of_attribute_value_round_trips(test_ops):
    x = _placeholder((3,), location="a.py:1")
    graph = Graph([x], [apply("test_attrs", [x], location="a.py:2")])
    line = str(graph).splitlines()[2]
    assert ('{nothing=none, yes=true, no=false, count=-3, big=1180591620717411303424, rate=0.1, '
            'tiny=1e-07, top=inf, bottom=-inf, undefined=nan, label="say \\"hi\\"\\n\\u00e9", '
            'empty=(), one=(1,), nested=((1, 2), ("a", none), (0.5, true)), dtype="int32", '
            'table=dense<float32[2,2]>[[1.5, 2.0], [3.0, 4.0]], '
            'index=(slice(none, -1, none), ..., 2)}') in line
    attrs = _round_trip(graph).outputs[0].node.attrs
    for name, expected in _ATTR_VALUES.items():
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(attrs[name], expected)
        elif isinstance(expected, float) and math.isnan(expected):
            assert math.isnan(attrs[name])
        else:
            assert attrs[name] == expected and type(attrs[name]) is type(expected)


def test_multiple_outputs_print_comma_separated(test_ops):
    x = _placeholder((3,), location="s.py:1")
    first, second = apply("test_split", [x], location="s.py:2")
    graph = Graph([x], [second, first])
    assert str(graph).splitlines()[2:4] == [
        '  %0, %1 = test_split(%x) {parts=2} : float32[3,2], int32[] loc("s.py:2")',
        "  return %1, %0"]
    parsed = _round_trip(graph)
    verify(parsed)
    assert parsed.outputs[0].node is parsed.outputs[1].node


def test_registered_multi_output_ops_round_trip():
    ops = [op for op in REGISTRY.values() if op.num_outputs > 1 and op.samples]
    if not ops:
        pytest.skip("no registered op has more than one output")
    for op in ops:
        graph = _sample_graph(op, op.samples[0], symbolic=False)
        assert ", ".join(f"%{i}" for i in range(op.num_outputs)) in str(graph)
        _round_trip(graph)


# --- symbolic dims --------------------------------------------------------------------------

def _two_batches():
    for _ in range(5):
        SymDim()  # advance the process-wide counter: the text must not depend on it
    x = _placeholder((None, 3), name="a", location="s.py:1")
    y = _placeholder((None, 3), name="b", location="s.py:2")
    z = _placeholder((None, 4), name="c", location="s.py:3")
    return Graph([x, y, z], [apply("add", [x, y], location="s.py:4"), z])


def test_unified_symbolic_dims_print_as_one_renumbered_symbol():
    text = str(_two_batches())
    assert '%a = placeholder {name="a", default=none} : float32[?0,3]' in text
    assert '%b = placeholder {name="b", default=none} : float32[?0,3]' in text
    assert "%0 = add(%a, %b) : float32[?0,3]" in text
    assert ": float32[?1,4]" in text
    assert str(_two_batches()) == text  # fresh symbols, same text


def test_parsed_symbols_are_one_dim_per_name():
    parsed = _round_trip(_two_batches())
    a, b, c = parsed.inputs
    assert a.type.shape[0] == b.type.shape[0] == parsed.outputs[0].type.shape[0]
    assert a.type.shape[0] != c.type.shape[0]


def test_hand_written_text_with_comments_and_own_names_parses():
    text = """
    # a hand-written test input
    graph @main(%x, %y) {   # two batches that add() unifies
      %x = placeholder : float32[?batch,3]
      %y = placeholder {name="y"} : float32[?other,3]
      %7 = add(%x, %y) : float32[?batch,3]
      %sum = neg(%7) : float32[?other,3]
      return %sum
    }
    """
    graph = parse(text)
    verify(graph)
    assert str(graph).splitlines()[1:5] == [
        "  %x = placeholder {name=none, default=none} : float32[?0,3]",
        '  %y = placeholder {name="y", default=none} : float32[?0,3]',
        "  %0 = add(%x, %y) : float32[?0,3]",
        "  %sum = neg(%0) : float32[?0,3]"]


# --- parse errors ---------------------------------------------------------------------------

_GOOD = """graph @main(%x) {
  %x = placeholder {name="x", default=none} : float32[3]
  %1 = add(%x, %x) : float32[3]
  return %1
}"""
_LINE3 = "  %1 = add(%x, %x) : float32[3]"


@pytest.mark.parametrize("line3, marker, message", [
    ("  %1 = add(%x, $x) : float32[3]", "$", "unexpected character '$'"),
    ("  %1 = ad(%x, %x) : float32[3]", "ad(", "unknown op 'ad'; did you mean"),
    ("  %1 = add(%x, %q) : float32[3]", "%q", "value %q is used but never defined"),
    ("  %1, %2 = add(%x, %x) : float32[3], float32[3]", "%1", "add has 1 output(s)"),
    ("  %1, %2 = add(%x, %x) : float32[3]", "float32", "2 value name(s) but 1 type(s)"),
    ("  %1 = add(%x, %x) : float32[3,", "return", "expected a dimension"),
    ("  %1 = add(%x, %x) : flot32[3]", "flot32", "unknown dtype 'flot32'"),
    ("  %1 = add(%x, %x) : float32[-3]", "-3", "expected a dimension"),
    ("  %1 = add(%x, %x) : float32[4]", "%1",
     "the text says float32[4] but the type rule gives float32[3]"),
    ("  %1 = add(%x, %x) float32[3]", "float32", "expected ':' before the output types"),
    ("  %1 = add(%x, %x) : float32[3] loc(\"never closed)", '"', "unterminated string"),
    ("  %1 = relu(%x) {alpha=0.0, beta=1} : float32[3]", "{", "unknown attribute(s) ['beta']"),
    ("  %1 = relu(%x) {alpha=0.0, alpha=1.0} : float32[3]", "alpha=1.0", "given twice"),
    ("  %1 = relu(%x) {alpha=} : float32[3]", "}", "expected an attribute value"),
    ("  %x = neg(%x) : float32[3]", "%x", "value %x is defined twice"),
    ("  %1 = constant {value=dense<float32[2]>[1.0]} : float32[2]", "]} ",
     "this row has 1 element(s)"),
    ("  %1 = constant {value=dense<float32[40]>elided(sha1=\"0123abcd\")} : float32[40]",
     "elided", "full_constants=True"),
    ("  %1 = constant {value=dense<int32[]>1.5} : int32[]", "1.5",
     "expected an element of dtype int32"),
    ("  %1 = constant {value=dense<int32[2]>[1, 2]} : int32[3]", "%1",
     "the constant's value is int32[2] but its type says int32[3]"),
    ("  %1 = variable {name=\"v\"} : float32[?0]", "%1", "needs a fully known shape"),
])
def test_parse_errors_name_line_and_column(line3, marker, message):
    text = _GOOD.replace(_LINE3, line3)
    with pytest.raises(ParseError) as caught:
        parse(text)
    error = caught.value
    start = text.index(line3)
    offset = text.index(marker, start)
    expected = (text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset))
    assert message in str(error)
    assert (error.line, error.column) == expected, str(error)


@pytest.mark.parametrize("text, line, column, message", [
    ("", 1, 1, "expected 'graph'"),
    ("graph main() {\n}", 1, 7, "expected a graph name"),
    (_GOOD[:-1], 5, 1, "expected a node"),
    (_GOOD + "\n}", 6, 1, "expected the end of the text"),
    (_GOOD.replace("return %1", "return %1\n  return %1"), 5, 3, "one 'return'"),
])
def test_parse_errors_in_graph_structure(text, line, column, message):
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert message in str(caught.value)
    assert (caught.value.line, caught.value.column) == (line, column), str(caught.value)


# --- verify ------------------------------------------------------------------------------------

def test_verify_catches_a_tampered_type_naming_op_location_and_types():
    x = _placeholder((None, 3), location="model.py:1")
    y = apply("relu", [x], location="model.py:2")
    graph = Graph([x], [y])
    verify(graph)
    y.type = TensorType("float32", (x.type.shape[0], 4))
    with pytest.raises(VerifyError) as caught:
        verify(graph)
    message = str(caught.value)
    assert message.startswith("relu at model.py:2: expected float32[?0,3]")
    assert "recorded float32[?0,4]" in message
    assert "%0 = relu(%x)" in message


def test_verify_catches_a_type_rule_that_fails():
    x = _placeholder((3,), location="m.py:1")
    y = _placeholder((4,), name="y", location="m.py:2")
    bad = make_node(REGISTRY["add"], (x, y), {}, (TensorType("float32", (3,)),), "m.py:3")
    with pytest.raises(VerifyError, match=r"add at m.py:3: its type rule fails"):
        verify(Graph([x, y], [bad]))


def test_verify_catches_a_wrong_output_count():
    x = _placeholder((3,), location="m.py:1")
    node = apply("neg", [x], location="m.py:2").node
    node.outputs = node.outputs + node.outputs
    with pytest.raises(VerifyError, match=r"neg at m.py:2: has 2 output\(s\); op neg has 1"):
        verify(Graph([x], [node.outputs[0]]))


def test_verify_checks_updates():
    w = variable(np.zeros(3), name="W", dtype="float32", location="m.py:1")
    x = _placeholder((3,), location="m.py:2")
    wide = _placeholder((4,), name="wide", location="m.py:3")
    verify(Graph([x], [], [(w, apply("add", [w, x], location="m.py:4"))]))
    with pytest.raises(VerifyError, match=r"update target .* must be a variable; it is a place"):
        verify(Graph([x], [], [(x, w)]))
    with pytest.raises(VerifyError, match=r"update of variable 'W'.*expected float32\[3\].*"
                                          r"recorded float32\[4\]"):
        verify(Graph([wide], [], [(w, wide)]))
    as_int = apply("cast", [x], location="m.py:5", dtype="int32")
    with pytest.raises(VerifyError, match=r"recorded int32\[3\]"):
        verify(Graph([x], [], [(w, as_int)]))


def test_verify_requires_graph_inputs_to_be_placeholders():
    w = variable(np.zeros(3), name="W", dtype="float32", location="m.py:1")
    with pytest.raises(VerifyError, match=r"input 0 .* must be a placeholder; it is a variable"):
        verify(Graph([w], [w]))


# --- deep graphs ----------------------------------------------------------------------------

def test_a_100000_node_chain_prints_parses_and_verifies_without_recursion():
    x = _placeholder((3,), location="chain")
    one = constant(np.float32(1.0), location="chain")
    y = x
    for _ in range(100_000):
        y = apply("add", [y, one], location="chain")
    graph = Graph([x], [y])
    text = str(graph)
    lines = text.splitlines()
    assert len(lines) == 100_000 + 5  # header, x, the constant, the adds, return, }
    assert lines[-3] == '  %100000 = add(%99999, %0) : float32[3] loc("chain")'
    parsed = parse(text)
    verify(parsed)
    assert str(parsed) == text
