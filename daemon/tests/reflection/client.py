"""An independent gRPC client (grpcio, Python) that knows nothing of the
shieldx schema: it discovers the API through server reflection, builds the
message classes from the descriptors the server returns, and calls
GetState and SubmitEvents with a bearer token.

usage: client.py HOST:PORT READ_TOKEN SUBMIT_TOKEN
Exits 0 when every check holds, 1 with the reason otherwise.
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def fail(reason):
    print(f"reflection client: FAIL: {reason}")
    sys.exit(1)


def main():
    address, read_token, submit_token = sys.argv[1:4]
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=20)

    database = ProtoReflectionDescriptorDatabase(channel)
    services = list(database.get_services())
    print("services:", ", ".join(services))
    if "shieldx.v1.Client" not in services:
        fail(f"shieldx.v1.Client is not listed: {services}")

    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("shieldx.v1.Client")
    methods = {m.name: m for m in service.methods}
    for wanted in ["SubmitEvents", "SubmitTransaction", "GetState", "GetBlock", "GetAlert", "Subscribe"]:
        if wanted not in methods:
            fail(f"method {wanted} missing: {sorted(methods)}")

    def call(name, fields, token):
        method = methods[name]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        stub = channel.unary_unary(
            f"/shieldx.v1.Client/{name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        return stub(request_class(**fields), metadata=[("authorization", f"Bearer {token}")], timeout=30)

    try:
        call("GetState", {}, "wrong-token")
        fail("an unknown token was accepted")
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAUTHENTICATED:
            fail(f"unknown token gave {error.code()}, not UNAUTHENTICATED")

    state = call("GetState", {}, read_token)
    print(f"GetState: chain {state.chain_id}, height {state.height}, view {state.view}")
    if state.chain_id != "shieldx-local":
        fail(f"unexpected chain id {state.chain_id!r}")

    event_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("shieldx.v1.SecurityEvent"))
    event = event_class(
        id="reflection-1",
        ts=1767225600000,
        source="203.0.113.7",
        sensor="python",
        kind="http",
        payload=b"GET /item?id=1%27%20OR%201=1-- HTTP/1.1\r\nhost: shop\r\n\r\n",
    )
    reply = call("SubmitEvents", {"events": [event]}, submit_token)
    print(f"SubmitEvents: height {reply.height}, applied {reply.applied}, alerts {reply.alerts}")
    if not reply.applied or reply.height < 1 or len(reply.reply_signature) != 128:
        fail(f"unexpected reply {reply}")
    if reply.alerts < 1:
        fail("an SQL injection raised no alert")
    print("reflection client: ok")


if __name__ == "__main__":
    main()
