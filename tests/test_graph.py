"""Graph utilities: topological order, users, networkx and DOT export."""
import networkx as nx
import numpy as np

from graphk import backend as K
from graphk.ir import Graph


def _small_graph():
    x = K.placeholder((None, 3), name="x")
    w = K.variable(np.ones(3), name="w")
    h = x * w
    out = K.exp(h) + h
    return Graph([x], [out], [(w, w + 1.0)]), x, w, h, out


def test_topological_order_puts_producers_first_and_lists_leaves():
    graph, x, w, h, out = _small_graph()
    position = {node: i for i, node in enumerate(graph.nodes)}
    for node in graph.nodes:
        for value in node.inputs:
            assert position[value.node] < position[node]
    assert graph.variables == [w] and graph.placeholders == [x]


def test_users_map():
    graph, x, w, h, out = _small_graph()
    users = graph.users()
    assert sorted(n.op.name for n in users[h]) == ["add", "exp"]


def test_networkx_export_is_a_dag_with_op_labels():
    graph, *_ = _small_graph()
    g = graph.to_networkx()
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == len(graph.nodes)
    assert {data["op"] for _, data in g.nodes(data=True)} >= {"placeholder", "variable", "exp"}


def test_dot_export_names_every_node():
    graph, *_ = _small_graph()
    dot = graph.to_dot()
    assert dot.startswith('digraph "main"') and dot.count("->") >= len(graph.nodes) - 1
    assert "float32[?0,3]" in dot or "float32[?" in dot


def test_switch_with_tensor_and_callable_branches():
    x = K.placeholder((None, 3))
    data = np.array([[-1.0, 2.0, -3.0]], dtype=np.float32)
    out = K.switch(K.greater(x, 0), x, lambda: -x)
    np.testing.assert_array_equal(K.function([x], [out])([data])[0], np.abs(data))
    flag = K.placeholder((), dtype="bool")
    picked = K.switch(flag, x * 2, x * 3)
    f = K.function([x, flag], [picked])
    assert f([data, True])[0].tolist() == (data * 2).tolist()
    assert f([data, False])[0].tolist() == (data * 3).tolist()
