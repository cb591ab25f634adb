"""Read the IR text that `ir.printer` writes back into a Graph.

A regular-expression tokenizer reads tokens on demand and keeps each one's
offset, from which an error computes its line and column; the statement
grammar is a loop (a graph of 100,000 nodes needs no deep recursion) and only
attribute values, whose nesting is shallow, are read by recursive descent.

Nodes are rebuilt with the types the text states, and the parser checks
those against each op's type rule, so a hand-edited test that states a wrong
shape fails at its line rather than in a later pass. Every problem raises
`ParseError(message, line, column)`.
"""
from __future__ import annotations

import difflib
import json
import re
from typing import NamedTuple

import numpy as np

from .dtypes import DTYPES, FLOAT_DTYPES, INT_DTYPES
from .errors import ParseError
from .graph import Graph, Value
from .ops.leaf import Variable
from .ops.registry import REGISTRY, VARIADIC, OpDef, make_node
from .printer import DimNamer
from .shapes import SymDim
from .types import TensorType
from .verify import types_agree

_TOKEN = re.compile(r"""
    (?:\s+|\#[^\n]*)*                      # blanks and comments before a token
    (?:
      (?P<value>%[A-Za-z0-9_.]+)
    | (?P<global>@[A-Za-z0-9_.]+)
    | (?P<symbol>\?[A-Za-z0-9_]+)
    | (?P<string>"(?:[^"\\\n]|\\.)*")
    | (?P<number>[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|[-+]inf\b)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<punct>\.\.\.|[(){}\[\]<>,=:@])
    | (?P<end>\Z)
    | (?P<bad>.)
    )""", re.VERBOSE | re.DOTALL)
_INT = re.compile(r"[-+]?\d+\Z")
_ELIDED_HINT = ("this constant was elided when printed; print the graph with "
                "to_text(full_constants=True) to parse it")


class Token(NamedTuple):
    kind: str  # value, global, symbol, string, number, word, punct, end
    text: str
    offset: int


def parse(text: str) -> Graph:
    """The Graph that `text` (as `print_graph` writes it) describes."""
    return _Parser(text).graph()


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _describe(token: Token) -> str:
    return "the end of the text" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.offset = 0  # where the tokenizer reads next
        self.token = self.scan()  # the one token of lookahead
        self.values: dict[str, Value] = {}
        self.symbols: dict[str, SymDim] = {}

    # --- token helpers ------------------------------------------------------------

    def error(self, message: str, token: Token | None = None) -> ParseError:
        token = token if token is not None else self.peek()
        return ParseError(message, *_line_column(self.text, token.offset))

    def scan(self) -> Token:
        """The token at `self.offset` (blanks and comments skipped); moves past it.

        Tokens are read on demand rather than listed up front: a list of
        millions of tokens costs more to build than the parse itself.
        """
        match = _TOKEN.match(self.text, self.offset)
        kind = match.lastgroup
        start = match.start(kind)
        if kind == "bad":
            char = self.text[start]
            what = "an unterminated string" if char == '"' else f"unexpected character {char!r}"
            raise ParseError(what, *_line_column(self.text, start))
        self.offset = match.end()
        return Token(kind, match.group(kind), start)

    def peek(self) -> Token:
        return self.token

    def advance(self) -> Token:
        token = self.token
        if token.kind != "end":
            self.token = self.scan()
        return token

    def at(self, text: str) -> bool:
        token = self.token
        return token.text == text and token.kind in ("punct", "word")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.advance()
            return True
        return False

    def expect(self, text: str, context: str = "") -> Token:
        if not self.at(text):
            where = f" {context}" if context else ""
            raise self.error(f"expected {text!r}{where}, found {_describe(self.peek())}")
        return self.advance()

    def value_token(self) -> Token:
        return self.expect_kind("value", "a value such as %x")

    def expect_kind(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token.kind != kind:
            raise self.error(f"expected {what}, found {_describe(token)}")
        return self.advance()

    # --- statements -----------------------------------------------------------------

    def graph(self) -> Graph:
        graph = self.graph_block("at the start of the text")
        self.expect_kind("end", "the end of the text after '}'")
        return graph

    def graph_block(self, context: str) -> Graph:
        """`graph @name(%inputs) { statements }`: the top-level graph or a nested body."""
        self.expect("graph", context)
        name = self.graph_name()
        self.expect("(", "after the graph name")
        input_tokens = self.comma_list(self.value_token, ")")
        self.expect(")")
        self.expect("{")
        outputs, updates = None, []
        while not self.at("}"):
            token = self.peek()
            if token.kind == "value":
                self.node()
            elif self.at("return"):
                if outputs is not None:
                    raise self.error("a graph has one 'return'", token)
                outputs = self.return_statement()
            elif self.at("update"):
                updates.append(self.update_statement())
            else:
                raise self.error("expected a node ('%name = op...'), 'return', 'update' or '}', "
                                 f"found {_describe(token)}")
        self.advance()
        inputs = [self.lookup(token) for token in input_tokens]
        return Graph(inputs, outputs or [], updates, name)

    def graph_name(self) -> str:
        token = self.peek()
        if token.kind == "global":
            self.advance()
            return token.text[1:]
        if token.text == "@":
            self.advance()
            return self.string(self.expect_kind("string", "a graph name after '@'"))
        raise self.error(f"expected a graph name such as @main, found {_describe(token)}")

    def comma_list(self, item, close: str) -> list:
        """Items separated by commas, up to (not including) `close`."""
        items = []
        if not self.at(close):
            items.append(item())
            while self.accept(","):
                items.append(item())
        return items

    def return_statement(self) -> list[Value]:
        self.advance()
        if self.peek().kind != "value":
            return []
        outputs = [self.lookup(self.advance())]
        while self.accept(","):
            outputs.append(self.lookup(self.value_token()))
        return outputs

    def update_statement(self) -> tuple[Value, Value]:
        self.advance()
        target = self.lookup(self.expect_kind("value", "the variable an update assigns"))
        self.expect("=", "in an update")
        value = self.lookup(self.expect_kind("value", "the value an update assigns"))
        return target, value

    def lookup(self, token: Token) -> Value:
        try:
            return self.values[token.text[1:]]
        except KeyError:
            raise self.error(f"value {token.text} is used but never defined", token) from None

    # --- nodes ------------------------------------------------------------------------

    def node(self) -> None:
        start = self.peek()
        targets = [self.advance()]
        while self.accept(","):
            targets.append(self.expect_kind("value", "a value name such as %x"))
        self.expect("=", "after the names a node defines")
        op_token = self.expect_kind("word", "an op name")
        op = self.op(op_token)
        inputs = []
        if self.accept("("):
            inputs = [self.lookup(t) for t in self.comma_list(self.value_token, ")")]
            self.expect(")", "after the inputs")
        attrs_token = self.peek()
        attrs = self.attr_dict() if self.at("{") else {}
        self.expect(":", "before the output types")
        types_token = self.peek()
        types = [self.type()]
        while self.accept(","):
            types.append(self.type())
        location = None
        if self.accept("loc"):
            self.expect("(", "after 'loc'")
            location = self.string(self.expect_kind("string", "a quoted location"))
            self.expect(")", "after the location")
        if len(targets) != len(types):
            raise self.error(f"{len(targets)} value name(s) but {len(types)} type(s)", types_token)
        if op.num_outputs != VARIADIC and len(types) != op.num_outputs:
            raise self.error(f"op {op.name} has {op.num_outputs} output(s); "
                             f"the text gives {len(types)}", start)
        try:
            attrs = op.complete_attrs(attrs)
        except (TypeError, ValueError) as error:
            raise self.error(str(error), attrs_token) from None
        if op.leaf:
            outputs = self.leaf(op, inputs, attrs, types, location, start)
        else:
            self.check_types(op, inputs, attrs, types, start)
            outputs = _outputs(make_node(op, inputs, attrs, types, location))
        self.define(targets, outputs)

    def op(self, token: Token) -> OpDef:
        op = REGISTRY.get(token.text)
        if op is None:
            close = difflib.get_close_matches(token.text, REGISTRY, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise self.error(f"unknown op {token.text!r}{hint}", token)
        return op

    def define(self, targets: list[Token], outputs) -> None:
        for token, value in zip(targets, outputs):
            name = token.text[1:]
            if name in self.values:
                raise self.error(f"value {token.text} is defined twice", token)
            if not name.isdigit():
                value.name = name
            self.values[name] = value

    def leaf(self, op: OpDef, inputs, attrs, types, location, start: Token):
        """Placeholders, variables and constants: the stated type is the type."""
        if inputs:
            raise self.error(f"{op.name} takes no inputs", start)
        (type,) = types
        if op.name == "constant":
            attrs["value"] = self.constant_array(attrs["value"], type, start)
        if op.name == "variable":
            if not type.is_static:
                raise self.error("a variable needs a fully known shape, "
                                 f"not {self.type_text(type)}", start)
            value = make_node(op, (), attrs, types, location, value_class=Variable)
            value.storage = np.zeros(type.shape, type.dtype)
            return (value,)
        return _outputs(make_node(op, (), attrs, types, location))

    def constant_array(self, value, type: TensorType, start: Token) -> np.ndarray:
        """The constant's array (a bare number is taken in the stated type), read-only."""
        if not isinstance(value, np.ndarray):
            try:
                value = np.asarray(value, dtype=type.dtype)
            except (TypeError, ValueError, OverflowError):
                raise self.error(f"a constant's value must be a dense array, "
                                 f"not {value!r}", start) from None
        if value.dtype.name != type.dtype or value.shape != type.shape:
            raise self.error(f"the constant's value is {value.dtype.name}{list(value.shape)} "
                             f"but its type says {self.type_text(type)}", start)
        value = value.copy()
        value.setflags(write=False)
        return value

    def check_types(self, op: OpDef, inputs, attrs, types, start: Token) -> None:
        """The stated output types must be what the op's type rule gives."""
        input_types = [v.type for v in inputs]
        try:
            inferred = op.infer(*input_types, **attrs)
        except Exception as error:  # noqa: BLE001 (any failing rule is reported at this line)
            given = ", ".join(self.type_text(t) for t in input_types)
            raise self.error(f"{op.name}: {error} (given {given})", start) from None
        inferred = inferred if isinstance(inferred, tuple) else (inferred,)
        if not types_agree(types, inferred, input_types):
            raise self.error(
                f"{op.name}: the text says {', '.join(self.type_text(t) for t in types)} but "
                f"the type rule gives {', '.join(self.type_text(t) for t in inferred)} for "
                f"inputs {', '.join(self.type_text(t) for t in input_types) or 'none'}", start)

    def type_text(self, type: TensorType) -> str:
        """A type in the text's own symbol names, for error messages."""
        namer = DimNamer()
        for name, dim in self.symbols.items():
            namer.bind(dim, name)
        return namer.type_text(type)

    # --- types --------------------------------------------------------------------------

    def type(self) -> TensorType:
        token = self.expect_kind("word", "a type such as float32[3,4]")
        if token.text not in DTYPES:
            raise self.error(f"unknown dtype {token.text!r}; graphk supports "
                             f"{', '.join(DTYPES)}", token)
        self.expect("[", "after the dtype")
        dims = self.comma_list(self.dim, "]")
        self.expect("]", "after the dimensions")
        return TensorType(token.text, dims)

    def dim(self):
        token = self.advance()
        if token.kind == "symbol":
            return self.symbol(token)
        if token.kind == "number" and _INT.match(token.text) and not token.text.startswith("-"):
            return int(token.text)
        raise self.error("expected a dimension (a size such as 3 or a symbol such as ?0), "
                         f"found {_describe(token)}", token)

    def symbol(self, token: Token) -> SymDim:
        """One SymDim per distinct `?name` in the text."""
        dim = self.symbols.get(token.text)
        if dim is None:
            dim = self.symbols[token.text] = SymDim()
        return dim

    # --- attribute values (recursive descent; nesting is shallow) -------------------------

    def attr_dict(self) -> dict:
        self.expect("{")
        attrs: dict = {}
        while not self.at("}"):
            key = self.expect_kind("word", "an attribute name")
            if key.text in attrs:
                raise self.error(f"attribute {key.text!r} is given twice", key)
            self.expect("=", f"after attribute name {key.text!r}")
            attrs[key.text] = self.attr_value()
            if not self.accept(","):
                break
        self.expect("}", "after the attributes")
        return attrs

    def attr_value(self):
        token = self.peek()
        if token.kind == "word" and token.text in _WORD_VALUES:
            return _WORD_VALUES[token.text](self)
        reader = _KIND_VALUES.get(token.kind)
        if reader is None and token.kind == "punct":
            reader = _PUNCT_VALUES.get(token.text)
        if reader is None:
            raise self.error(f"expected an attribute value, found {_describe(token)}")
        return reader(self)

    def keyword_value(self):
        return _KEYWORDS[self.advance().text]

    def number_value(self):
        return _number(self.advance().text)

    def string_value(self) -> str:
        return self.string(self.advance())

    def symbol_value(self) -> SymDim:
        return self.symbol(self.advance())

    def tuple_value(self) -> tuple:
        self.expect("(")
        items = []
        while not self.at(")"):
            items.append(self.attr_value())
            if not self.accept(","):
                break
        self.expect(")", "to close the tuple")
        return tuple(items)

    def graph_value(self) -> Graph:
        """A nested graph (a loop body): its own value names, the outer graph's symbols."""
        outer_values, self.values = self.values, {}
        try:
            return self.graph_block("to start a nested graph")
        finally:
            self.values = outer_values

    def ellipsis_value(self):
        self.advance()
        return Ellipsis

    def slice_value(self) -> slice:
        """`slice(start, stop, step)`, each an int or none."""
        self.advance()
        self.expect("(", "after 'slice'")
        parts = [self.attr_value()]
        for _ in range(2):
            self.expect(",", "between the parts of a slice(start, stop, step)")
            parts.append(self.attr_value())
        self.expect(")", "to close the slice")
        return slice(*parts)

    def string(self, token: Token) -> str:
        try:
            return json.loads(token.text)
        except json.JSONDecodeError as error:
            raise self.error(f"malformed string {token.text}: {error.msg}", token) from None

    def dense_value(self) -> np.ndarray:
        """`dense<dtype[shape]>elements`; elided constants cannot be read back."""
        self.advance()
        self.expect("<", "after 'dense'")
        type_token = self.peek()
        type = self.type()
        if not type.is_static:
            raise self.error("a dense constant needs a fully known shape", type_token)
        self.expect(">", "after the dense constant's type")
        if self.at("elided"):
            raise self.error(_ELIDED_HINT)
        elements: list = []
        self.elements(type.shape, type.dtype, elements)
        try:
            return np.array(elements, dtype=type.dtype).reshape(type.shape)
        except OverflowError as error:
            raise self.error(f"a value does not fit {type.dtype}: {error}", type_token) from None

    def elements(self, shape: tuple, dtype: str, out: list) -> None:
        """Nested bracketed rows matching `shape`, appended to `out` in row-major order."""
        if not shape:
            out.append(self.element(dtype))
            return
        self.expect("[", f"to start a row of {shape[0]} element(s)")
        for i in range(shape[0]):
            if i and not self.accept(","):
                raise self.error(f"this row has {i} element(s) but the constant's shape "
                                 f"{list(shape)} needs {shape[0]}")
            self.elements(shape[1:], dtype, out)
        if not self.at("]"):
            raise self.error(f"expected ']' after {shape[0]} element(s) (shape {list(shape)}), "
                             f"found {_describe(self.peek())}")
        self.advance()

    def element(self, dtype: str):
        token = self.advance()
        if dtype == "bool":
            if token.text in ("true", "false"):
                return token.text == "true"
        elif token.kind == "number" or token.text in ("inf", "nan"):
            value = _number(token.text)
            if dtype in FLOAT_DTYPES or (dtype in INT_DTYPES and isinstance(value, int)):
                return value
        raise self.error(f"expected an element of dtype {dtype}, found {_describe(token)}",
                         token)


def _number(text: str):
    if _INT.match(text):
        return int(text)
    return float(text)  # also inf, -inf, nan


def _outputs(made) -> tuple:
    return made if isinstance(made, tuple) else (made,)


_KEYWORDS = {"none": None, "true": True, "false": False, "inf": float("inf"),
             "nan": float("nan")}

# How an attribute value starts -> how to read it (a nested graph is a loop body).
_WORD_VALUES = {**{word: _Parser.keyword_value for word in _KEYWORDS},
                "dense": _Parser.dense_value, "slice": _Parser.slice_value,
                "graph": _Parser.graph_value}
_PUNCT_VALUES = {"(": _Parser.tuple_value, "...": _Parser.ellipsis_value}
_KIND_VALUES = {"number": _Parser.number_value, "string": _Parser.string_value,
                "symbol": _Parser.symbol_value}
