"""The few gRPC messages the worker library reads and writes, so the dev host can drive the library itself.

The Functions host and the Python worker exchange the protobuf messages of `FunctionRpc.proto`
(github.com/Azure/azure-functions-language-worker-protobuf, `src/proto/FunctionRpc.proto`). The worker library
(`azure_functions_runtime`) receives its message classes as a module (`protos`) and only touches a handful of
them: enum values of `BindingInfo` while indexing, `TypedData` / `RpcHttp` / `ParameterBinding` while
converting arguments and results. These classes offer exactly that surface (field names and one-of groups as
in the .proto), so that indexing and binding conversion run through the library's own code, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


class BindingInfo:
    """`BindingInfo.Direction` and `BindingInfo.DataType` enum values, as protobuf exposes nested enums."""

    # `in` is a Python keyword: protobuf exposes it only through getattr, and the library never reads it.
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


_TYPED_DATA_FIELDS = (
    "string",
    "json",
    "bytes",
    "stream",
    "http",
    "int",
    "double",
    "collection_bytes",
    "collection_string",
    "collection_double",
    "collection_sint64",
    "model_binding_data",
    "collection_model_binding_data",
)


class TypedData:
    """`TypedData`: one value in the one-of group `data` (or none: a null value)."""

    def __init__(self, **value: Any) -> None:
        unknown = set(value) - set(_TYPED_DATA_FIELDS)
        if unknown or len(value) > 1:
            raise ValueError(f"TypedData takes one of {_TYPED_DATA_FIELDS}, got {sorted(value)}")
        self._kind: str | None = next(iter(value), None)
        self._value: Any = value.get(self._kind) if self._kind else None

    def WhichOneof(self, group: str) -> str | None:  # noqa: N802 - protobuf's method name
        if group != "data":
            raise ValueError(f"TypedData has no one-of group {group!r}")
        return self._kind

    def __getattr__(self, name: str) -> Any:
        if name in _TYPED_DATA_FIELDS:
            return self._value if name == self._kind else None
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"TypedData({self._kind}={self._value!r})"


@dataclass
class RpcHttp:
    """`RpcHttp`: an HTTP request (host → worker) or response (worker → host)."""

    method: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: TypedData = field(default_factory=TypedData)
    params: dict[str, str] = field(default_factory=dict)  # route parameters
    query: dict[str, str] = field(default_factory=dict)
    status_code: str = ""
    cookies: list[Any] | None = None
    enable_content_negotiation: bool = False


@dataclass
class ParameterBinding:
    """`ParameterBinding`: a named input (or output) value; `rpc_data` is always `data` here."""

    name: str
    data: TypedData

    RPC_DATA: ClassVar[str] = "data"

    def WhichOneof(self, group: str) -> str:  # noqa: N802 - protobuf's method name
        if group != "rpc_data":
            raise ValueError(f"ParameterBinding has no one-of group {group!r}")
        return self.RPC_DATA
