"""The interop TestService on Python grpcio, for tower-lb's interop tests.

Usage: python3 server.py PROTO_DIR

Loads PROTO_DIR/interop/test.proto at start-up (grpcio-tools compiles it in memory), serves
grpc.testing.TestService on 127.0.0.1 on a port the system picks, and speaks to the test
that started it through its standard streams:

* stdout: first `port N` once it serves, then `event began METHOD` and
  `event cancelled METHOD` as streaming calls begin, or end before the server finished them.
* stdin: the server exits when it closes, so a test that dies leaves no server behind.
"""

import os
import sys
import threading
import time
from concurrent import futures

import grpc

INITIAL_KEY = "x-grpc-test-echo-initial"
TRAILING_KEY = "x-grpc-test-echo-trailing-bin"

_print_lock = threading.Lock()


def say(line):
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def exit_when_stdin_closes():
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os._exit(0)


def main():
    proto_dir = sys.argv[1]
    sys.path.insert(0, proto_dir)
    protos, services = grpc.protos_and_services("interop/test.proto")
    codes = {code.value[0]: code for code in grpc.StatusCode}

    def zeros(size):
        return protos.Payload(body=b"\0" * max(size, 0))

    def echo_metadata(context):
        received = dict(context.invocation_metadata())
        if INITIAL_KEY in received:
            context.send_initial_metadata(((INITIAL_KEY, received[INITIAL_KEY]),))
        if TRAILING_KEY in received:
            context.set_trailing_metadata(((TRAILING_KEY, received[TRAILING_KEY]),))

    def end_with(status, context):
        code = codes.get(status.code, grpc.StatusCode.UNKNOWN)
        context.abort(code, status.message)

    class Call:
        """Notes a streaming call's start, and its end if the client cancelled it."""

        def __init__(self, context, method):
            self.context = context
            self.done = False
            self.method = method
            say("event began " + method)
            context.add_callback(self.on_end)

        def finish(self, context):
            if context.is_active():
                self.done = True

        def on_end(self):
            # A client's reset can reach the handler as a plain end of its request stream,
            # before grpcio marks the call cancelled; by the time this callback runs it has.
            # grpcio keeps that on its private call state only: read it when it is there,
            # else fall back to whether the handler got to its end.
            client = getattr(getattr(self.context, "_state", None), "client", None)
            if client == "cancelled" or (client is None and not self.done):
                say("event cancelled " + self.method)

    def respond(parameters):
        for p in parameters:
            if p.interval_us > 0:
                time.sleep(p.interval_us / 1e6)
            yield protos.StreamingOutputCallResponse(payload=zeros(p.size))

    class TestService(services.TestServiceServicer):
        def EmptyCall(self, request, context):
            echo_metadata(context)
            return protos.Empty()

        def UnaryCall(self, request, context):
            echo_metadata(context)
            if request.HasField("response_status"):
                end_with(request.response_status, context)
            # grpcio does not tell a handler whether the request message came compressed, so
            # expect_compressed is not checked here (the interop test says so).
            if request.HasField("response_compressed"):
                context.set_compression(
                    grpc.Compression.Gzip
                    if request.response_compressed.value
                    else grpc.Compression.NoCompression
                )
            return protos.SimpleResponse(payload=zeros(request.response_size))

        def StreamingOutputCall(self, request, context):
            call = Call(context, "StreamingOutputCall")
            yield from respond(request.response_parameters)
            call.finish(context)
            if request.HasField("response_status"):
                end_with(request.response_status, context)

        def StreamingInputCall(self, request_iterator, context):
            call = Call(context, "StreamingInputCall")
            total = 0
            for request in request_iterator:
                total += len(request.payload.body)
            call.finish(context)
            return protos.StreamingInputCallResponse(aggregated_payload_size=total)

        def FullDuplexCall(self, request_iterator, context):
            call = Call(context, "FullDuplexCall")
            echo_metadata(context)
            for request in request_iterator:
                if request.HasField("response_status"):
                    call.finish(context)
                    end_with(request.response_status, context)
                yield from respond(request.response_parameters)
            call.finish(context)

        def HalfDuplexCall(self, request_iterator, context):
            call = Call(context, "HalfDuplexCall")
            parameters = [p for r in request_iterator for p in r.response_parameters]
            yield from respond(parameters)
            call.finish(context)

        # UnimplementedCall is left to the generated base class: UNIMPLEMENTED.

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    services.add_TestServiceServicer_to_server(TestService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        sys.exit("could not bind 127.0.0.1")
    server.start()
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    say("port %d" % port)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
