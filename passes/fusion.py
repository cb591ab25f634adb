"""Fusion: maximal regions of elementwise work (with their reductions) become one `fused` node.

A region grows in topological order: a fusible node (ir/ops/fused.py,
`allowed_in_body`) joins the region of a fusible input, merging the regions
of all its fusible inputs when it can. A node joins only if no path leaves
the region and comes back (an outside input that depends on the region
would make the fused node its own ancestor). Reductions join like any other
fusible node, so softmax (max, sub, exp, sum, div) and the work that feeds
and uses it become one region; the elementwise epilogue after a matmul (bias,
activation) becomes the region that reads the matmul's result.

Each region of two or more computing nodes is outlined into a closed body:
its outside inputs become body placeholders of exactly their types, small
constants stay inside, and every member value read outside the region (or
returned, or stored by an update) becomes an output of the fused node.
"""
from __future__ import annotations

import heapq

import numpy as np

from ..ir.graph import Graph
from ..ir.ops.fused import allowed_in_body
from ..ir.ops.leaf import placeholder
from ..ir.ops.registry import REGISTRY, make_node
from ..ir.rewrite import attrs_key, build, clone
from ..ir.shapes import SymDim

MAX_REGION_NODES = 512  # a longer chain is cut into several regions (kernels compile fast)
INLINE_CONSTANT_ELEMENTS = 64  # larger constants are passed in rather than copied into bodies
_SEARCH_LIMIT = 4096  # nodes a cycle check visits before it refuses a merge (stays correct)
_MERGE_SCAN_LIMIT = 512  # members whose inputs a merge of several regions may check
_FREE_OPS = ("stop_gradient", "broadcast_like")  # no work of their own: a region needs more
FUSED = REGISTRY["fused"]


def fuse_elementwise(graph: Graph) -> Graph:
    """The graph with each fusible region replaced by one fused node."""
    regions = _Regions(graph)
    regions.grow()
    return _outline(graph, regions.groups())


def fusible(node) -> bool:
    op = node.op
    return (not op.leaf and op.pure and len(node.outputs) == 1 and allowed_in_body(op))


class _Regions:
    """Union-find of regions over the graph's nodes, grown in topological order."""

    def __init__(self, graph: Graph):
        self.nodes = graph.nodes
        self.position = {node: i for i, node in enumerate(self.nodes)}
        self.parent: dict = {}  # node -> node (union-find over region members)
        self.members: dict = {}  # region root -> list of member nodes
        self.first: dict = {}  # region root -> smallest member position
        self.last: dict = {}  # region root -> largest member position
        self.outside: dict = {}  # region root -> producers (not leaves) its members read

    def find(self, node):
        root = node
        while self.parent[root] is not root:
            root = self.parent[root]
        while self.parent[node] is not root:
            self.parent[node], node = root, self.parent[node]
        return root

    def region(self, node):
        return self.find(node) if node in self.parent else None

    def grow(self) -> None:
        fusible_op: dict = {}  # op -> whether its nodes may join a region (one output aside)
        parent = self.parent
        for node in self.nodes:
            op = node.op
            allowed = fusible_op.get(op)
            if allowed is None:
                allowed = fusible_op[op] = not op.leaf and op.pure and allowed_in_body(op)
            if not allowed or len(node.outputs) != 1:
                continue
            candidates = []  # the regions of its inputs, in input order, once each
            for value in node.inputs:
                if value.node in parent:
                    root = self.find(value.node)
                    if root not in candidates:
                        candidates.append(root)
            self._start(node)
            if not candidates:
                continue
            candidates = [r for r in candidates if len(self.members[r]) < MAX_REGION_NODES]
            if not candidates:
                continue
            if len(candidates) > 1 and self._can_merge(node, candidates):
                joined = candidates
            else:
                joined = next(([r] for r in candidates if self._can_merge(node, [r])), [])
            for root in joined:
                self._union(root, node)

    def _start(self, node) -> None:
        self.parent[node] = node
        self.members[node] = [node]
        self.first[node] = self.position[node]
        self.last[node] = self.position[node]
        self.outside[node] = [v.node for v in node.inputs if not v.node.op.leaf]

    def _union(self, a, b) -> None:
        a, b = self.find(a), self.find(b)
        if a is b:
            return
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.members[a].extend(self.members.pop(b))
        self.first[a] = min(self.first[a], self.first.pop(b))
        self.last[a] = max(self.last[a], self.last.pop(b))
        merged = self.outside[a] + self.outside.pop(b)  # keep only what is still outside
        self.outside[a] = [p for p in dict.fromkeys(merged) if self.region(p) is not a]

    def _can_merge(self, node, roots: list) -> bool:
        """Whether `node` and the regions `roots` form one region without a cycle.

        For one region only `node`'s outside inputs can create a path back
        (the region's own outside inputs come before `node`); merging several
        regions checks every producer outside them that their members read
        (leaves cannot depend on anything), so it is tried only when there are
        not too many (joining one of them is always possible).
        """
        targets = set(roots)
        producers = [v.node for v in node.inputs if not v.node.op.leaf]
        if len(roots) > 1:
            producers += [p for r in roots for p in self.outside[r]]
        producers = [p for p in dict.fromkeys(producers)
                     if p is not node and self.region(p) not in targets]
        if len(roots) > 1 and len(producers) > _MERGE_SCAN_LIMIT:
            return False
        return not any(self._reaches(p, targets) for p in producers)

    def _reaches(self, start, roots: set) -> bool:
        """Whether `start` depends on a region in `roots` once regions are single nodes.

        A region becomes one node, so reaching any member of another region
        reaches all of its members' inputs too. Inputs of nodes before the
        regions' first member are not followed (they cannot depend on them);
        the search is bounded, refusing when it is too long (always safe).
        """
        floor = min(self.first[r] for r in roots)
        stack, seen, expanded = [start], {start}, set()
        while stack:
            node = stack.pop()
            region = self.region(node)
            if region in roots:
                return True
            if len(seen) > _SEARCH_LIMIT:
                return True
            if region is not None and region not in expanded:
                expanded.add(region)
                if self.last[region] < floor:
                    continue  # all its members are below the floor: nothing to follow
                stack.extend(m for m in self.members[region] if m not in seen)
                seen.update(self.members[region])
            if self.position[node] < floor:
                continue
            for value in node.inputs:
                if value.node not in seen:
                    seen.add(value.node)
                    stack.append(value.node)
        return False

    def groups(self) -> list:
        """Regions worth a fused node (two or more nodes doing work), members in order."""
        result = []
        for members in self.members.values():
            working = [m for m in members if m.op.name not in _FREE_OPS]
            if len(working) >= 2:
                result.append(sorted(members, key=self.position.__getitem__))
        return result


# --- outlining ---------------------------------------------------------------------------------

def _outline(graph: Graph, regions: list) -> Graph:
    """A new graph: each region one fused node, the rest cloned, in a topological order."""
    while True:
        region_of = {m: k for k, members in enumerate(regions) for m in members}
        order = _unit_order(graph, regions)
        if isinstance(order, list):
            break
        regions = [r for k, r in enumerate(regions) if k != order]  # undo one region, retry
    used = _used_outside(graph, region_of)
    mapping: dict = {}
    mapped = mapping.get
    bodies: dict = {}  # region key -> body, shared by equal regions
    for unit in order:
        if isinstance(unit, int):
            _emit_region(regions[unit], used, mapping, bodies)
            continue
        inputs = tuple([mapped(v, v) for v in unit.inputs])
        if inputs == unit.inputs:  # values compare by identity: nothing changed under it
            continue
        mapping.update(zip(unit.outputs, clone(unit, inputs)))
    return Graph(graph.inputs, [mapping.get(v, v) for v in graph.outputs],
                 [(t, mapping.get(v, v)) for t, v in graph.updates], graph.name)


def _unit_order(graph: Graph, regions: list) -> list | int:
    """Nodes outside regions and region indices, each after everything it reads (Kahn).

    A region is represented by its first member while ordering (nodes compare by
    identity, which keeps the loop cheap). If the regions as single nodes would
    form a cycle (which the bounded checks while growing should prevent), the
    index of a region on it.
    """
    nodes = graph.nodes
    position = {node: i for i, node in enumerate(nodes)}
    leader = {m: members[0] for members in regions for m in members}
    unit_of = leader.get
    successors: dict = {}
    pending: dict = {}
    for node in nodes:
        b = unit_of(node, node)
        if b not in pending:
            pending[b] = 0
        for value in node.inputs:
            a = unit_of(value.node, value.node)
            if a is b:
                continue
            following = successors.get(a)
            if following is None:
                successors[a] = [b]
            else:
                following.append(b)
            pending[b] += 1
    ready = [(position[u], u) for u, count in pending.items() if count == 0]
    heapq.heapify(ready)  # units have distinct positions: nodes are never compared
    order = []
    while ready:
        u = heapq.heappop(ready)[1]
        order.append(u)
        for v in successors.get(u, ()):
            pending[v] -= 1
            if pending[v] == 0:
                heapq.heappush(ready, (position[v], v))
    index = {members[0]: k for k, members in enumerate(regions)}
    if len(order) != len(pending):
        return max(index[u] for u, count in pending.items() if count and u in index)
    return [index.get(u, u) for u in order]


def _inline_constant(value) -> bool:
    node = value.node
    return node.op.name == "constant" and np.size(node.attrs["value"]) <= INLINE_CONSTANT_ELEMENTS


def _emit_region(members: list, used: set, mapping: dict, bodies: dict) -> None:
    """Outline one region into a fused node; map its members' used values to the node's outputs.

    A region equal to an earlier one (`bodies`: region key -> body) gets that body
    object: a deep network's layers share one body, which lowerings then plan once."""
    inside = set(members)
    outside_inputs: dict = {}
    for member in members:
        for value in member.inputs:
            if value.node not in inside and not _inline_constant(value):
                outside_inputs.setdefault(value, None)
    outer = [mapping.get(v, v) for v in outside_inputs]
    results = [m.outputs[0] for m in members if m.outputs[0] in used]
    key = _region_key(members, outside_inputs, outer, results)
    body = bodies.get(key) if key is not None else None
    root = members[-1]
    if body is not None:  # checked when first built; the outputs keep this region's types
        fused = make_node(FUSED, outer, {"body": body}, [v.type for v in results],
                          root.location)
        mapping.update(zip(results, fused if isinstance(fused, tuple) else (fused,)))
        return
    params = {v: placeholder(o.type, name=f"in{k}", location=v.location)
              for k, (v, o) in enumerate(zip(outside_inputs, outer))}
    body = Graph(list(params.values()), _copy_members(members, params, results), name="fused")
    if key is not None:
        bodies[key] = body
    fused = build("fused", outer, {"body": body}, root.location)
    mapping.update(zip(results, fused))


def _region_key(members: list, outside_inputs: dict, outer: list, results: list):
    """What the region's body would be, as a hashable key: each input's type and location,
    each member's op, attributes, location, output type and which inputs, members or
    (by identity) inline constants it reads, and which members are results. Equal keys
    make equal bodies, locations included (errors inside name the same lines). None when
    an attribute has no key."""
    reference: dict = {}
    parts = []
    for k, (value, given) in enumerate(zip(outside_inputs, outer)):
        reference[value] = k
        parts.append((given.type.dtype, _dims(given.type), value.location))
    for position, member in enumerate(members, start=len(parts)):
        attrs = attrs_key(member.attrs)
        if attrs is None:
            return None
        reads = tuple([reference.get(v, v) for v in member.inputs])  # else an inline constant
        result = member.outputs[0]
        parts.append((member.op.name, reads, attrs, member.location, result.type.dtype,
                      _dims(result.type)))
        reference[result] = position
    parts.append(tuple([reference[v] for v in results]))
    return tuple(parts)


def _dims(type) -> tuple:
    """Dims with each symbol as its root (equal when unified), sizes as they are."""
    return tuple([d.root() if d.__class__ is SymDim else d for d in type.shape])


def _copy_members(members: list, params: dict, results: list) -> list:
    """The members rebuilt on the body's placeholders (in order: linear in the region's size)."""
    copies = dict(params)
    for member in members:
        inputs = [copies.get(v, v) for v in member.inputs]
        copies.update(zip(member.outputs, clone(member, inputs)))
    return [copies[v] for v in results]


def _used_outside(graph: Graph, region_of: dict) -> set:
    """Values read outside the region that computes them, returned, or stored by an update."""
    used = set(graph.outputs) | {v for pair in graph.updates for v in pair}
    region = region_of.get
    for node in graph.nodes:
        home = region(node)
        for value in node.inputs:  # a producer outside every region counts as at home
            if region(value.node, home) != home:
                used.add(value)
    return used
