"""footfall.console.v1 as any client can know it: from server reflection alone
(gRPC) or from its REST routes (HTTP). Imports nothing of ours: the messages are
built in a descriptor pool of their own, since the official packages own the
names google.cloud.retail.v2.* in the default one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import grpc
import requests
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from .support import RPC_DEADLINE

SERVICE = "footfall.console.v1.ConsoleService"


class Console:
    """The console over gRPC on `channel`; each call carries `metadata`."""

    def __init__(self, channel: grpc.Channel, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self._channel = channel
        self._metadata = tuple(metadata)
        self.pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        self.service = self.pool.FindServiceByName(SERVICE)

    def _method(self, rpc: str) -> tuple[type[Message], type[Message]]:
        method = self.service.methods_by_name[rpc]
        return (message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type))

    def call(self, rpc: str, **fields: Any) -> dict[str, Any]:
        """The answer of `rpc` to a request of `fields` (proto3 JSON names), as a dict."""
        request_class, answer_class = self._method(rpc)
        call = self._channel.unary_unary(f"/{SERVICE}/{rpc}",
                                         request_serializer=request_class.SerializeToString,
                                         response_deserializer=answer_class.FromString)
        answer = call(json_format.ParseDict(fields, request_class()), timeout=RPC_DEADLINE,
                      metadata=self._metadata)
        return json_format.MessageToDict(answer, descriptor_pool=self.pool)

    def watch(self, rpc: str, seconds: float = 30.0, **fields: Any) -> Watch:
        request_class, answer_class = self._method(rpc)
        call = self._channel.unary_stream(f"/{SERVICE}/{rpc}",
                                          request_serializer=request_class.SerializeToString,
                                          response_deserializer=answer_class.FromString)
        return Watch(call(json_format.ParseDict(fields, request_class()), timeout=seconds,
                          metadata=self._metadata), self.pool)


class Watch:
    """An open watch: next() is the next message as a dict; cancel() ends it."""

    def __init__(self, stream: Any, pool: descriptor_pool.DescriptorPool) -> None:
        self._stream = stream
        self._pool = pool

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        return json_format.MessageToDict(next(self._stream), descriptor_pool=self._pool)

    def cancel(self) -> None:
        self._stream.cancel()


def rest(http_address: str, path: str, key: str | None = None,
         **query: Any) -> requests.Response:
    """GET /console/v1/{path}?{query} on the HTTP port."""
    url = f"http://{http_address}/console/v1/{path}"
    if query:
        url += "?" + urlencode(query)
    headers = {"x-goog-api-key": key} if key else {}
    return requests.get(url, headers=headers, timeout=RPC_DEADLINE)
