"""A Durable Functions custom handler in Python, on Microsoft's own replay engine.

The orchestrations and activities run in the `durabletask` package's executors
(`durabletask.worker._OrchestrationExecutor` and `_ActivityExecutor`, private names: pinned to durabletask
1.12.0 by scripts/python-requirements.txt), the same code the SDK's gRPC worker runs. Everything around them
is what any custom handler must do under the Functions host, written from the host's wire format and
nothing else:

- listen on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT and answer `/` (the host's readiness probe);
- take `POST /<Function>` with `{"Data": {...}, "Metadata": {...}}`:
  - orchestrator: `Data.<binding>` is a JSON string whose content is a JSON string literal of base64
    `OrchestratorRequest`; the reply's `ReturnValue` is base64 `OrchestratorResponse`, as a plain JSON string;
  - activity: `Data.<binding>` is a JSON string holding a JSON string literal of the input's JSON text, and
    `Metadata.instanceId` is the orchestration's instance id, JSON-quoted the same way; the reply's
    `ReturnValue` is the activity's output as a JSON value, and a failure is a 500 (the host reads no body then);
- reply `{"Outputs": {}, "Logs": [...], "ReturnValue": ...}`.

Binding names come from the function.json folders under $FUNCTIONS_APP_ROOT_PATH, as the host reads them.
Anything that is not the host's format gets a 400: a handler must not guess.

Standard library only, apart from durabletask.
"""

import base64
import binascii
import json
import logging
import os
import sys
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from durabletask import task, worker
from durabletask.internal import helpers as ph
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.serialization import JsonDataConverter

log = logging.getLogger("handler")
CONVERTER = JsonDataConverter()
# The host does not tell an activity the id of its task; the SDK's ActivityContext wants one.
UNKNOWN_TASK_ID = 0


# --- The app: orchestrators and activities, written against the Python SDK as anyone would.


def say_hello(ctx: task.ActivityContext, city: str) -> str:
    return f"Hello {city}!"


def chain(ctx: task.OrchestrationContext, cities: list):
    """Function chaining: one activity after the other."""
    greetings = []
    for city in cities:
        greetings.append((yield ctx.call_activity("SayHello", input=city)))
    return greetings


def square(ctx: task.ActivityContext, n: int) -> int:
    return n * n


def fan_out_fan_in(ctx: task.OrchestrationContext, numbers: list):
    """Fan-out/fan-in: every activity at once, then all of their results."""
    squares = yield task.when_all([ctx.call_activity("Square", input=n) for n in numbers])
    return {"squares": squares, "sum": sum(squares)}


def timer(ctx: task.OrchestrationContext, seconds: float):
    """A durable timer: the orchestration sleeps in the backend, not in this process."""
    started = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    woke = ctx.current_utc_datetime
    return {"waited": (woke - started).total_seconds(), "instance": ctx.instance_id}


def fail(ctx: task.ActivityContext, _input) -> None:
    raise ValueError("this activity always fails")


def catch_failure(ctx: task.OrchestrationContext, _input):
    """An activity failure reaches the orchestrator as a task failure it can handle."""
    try:
        yield ctx.call_activity("Fail")
    except task.TaskFailedError as e:
        return {"caught": True, "message": e.details.message}
    return {"caught": False}


def broken(ctx: task.OrchestrationContext, _input):
    raise RuntimeError("this orchestrator always fails")


REGISTRY = worker._Registry()
ORCHESTRATORS = {
    "Chain": chain,
    "FanOutFanIn": fan_out_fan_in,
    "Timer": timer,
    "CatchFailure": catch_failure,
    "Broken": broken,
}
ACTIVITIES = {"SayHello": say_hello, "Square": square, "Fail": fail}
for name, fn in ORCHESTRATORS.items():
    REGISTRY.add_named_orchestrator(name, fn)
for name, fn in ACTIVITIES.items():
    REGISTRY.add_named_activity(name, fn)


# --- The host's format.


class BadRequest(Exception):
    """The request is not what the Functions host sends."""


def trigger_bindings(app_root: Path) -> dict:
    """`{function: (trigger type, binding name)}` for the durable functions of the app folder."""
    bindings = {}
    for path in sorted(app_root.glob("*/function.json")):
        function = path.parent.name
        for binding in json.loads(path.read_text()).get("bindings", []):
            kind = binding.get("type", "").lower()
            if kind in ("orchestrationtrigger", "activitytrigger"):
                bindings[function] = (kind, binding["name"])
    for function, (kind, _) in bindings.items():
        registered = ORCHESTRATORS if kind == "orchestrationtrigger" else ACTIVITIES
        if function not in registered:
            raise SystemExit(f"{function}/function.json declares a {kind} this handler does not have")
    return bindings


def host_string(value, what: str) -> str:
    """A trigger value: a .NET string, which the host sends as the JSON serialization of the string."""
    if not isinstance(value, str):
        raise BadRequest(f"{what} is not a JSON string: {value!r:.80}")
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise BadRequest(f"{what} does not hold a JSON value: {e}") from None


def run_orchestrator(function: str, binding: str, body: dict):
    payload = host_string(body["Data"].get(binding), f"Data.{binding}")
    if not isinstance(payload, str):
        raise BadRequest(f"Data.{binding} does not hold a JSON string literal")
    try:
        request = pb.OrchestratorRequest()
        request.ParseFromString(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError) as e:
        raise BadRequest(f"Data.{binding} is not base64 OrchestratorRequest: {e}") from None
    try:
        result = worker._OrchestrationExecutor(REGISTRY, log, data_converter=CONVERTER).execute(
            request.instanceId, request.pastEvents, request.newEvents
        )
        response = pb.OrchestratorResponse(
            instanceId=request.instanceId,
            actions=result.actions,
            customStatus=ph.get_string_value(result.encoded_custom_status),
        )
    except Exception as e:
        # What the SDK's own worker does when the executor itself throws: the orchestration fails.
        log.exception("orchestrator %s failed to run", function)
        details = ph.new_failure_details(e)
        action = ph.new_complete_orchestration_action(-1, pb.ORCHESTRATION_STATUS_FAILED, "", details)
        response = pb.OrchestratorResponse(instanceId=request.instanceId, actions=[action])
    logs = [f"{function} {request.instanceId}: {len(response.actions)} action(s)"]
    return base64.b64encode(response.SerializeToString()).decode("ascii"), logs


def run_activity(function: str, binding: str, body: dict):
    input_text = host_string(body["Data"].get(binding), f"Data.{binding}")
    if input_text is not None and not isinstance(input_text, str):
        raise BadRequest(f"Data.{binding} does not hold the input's JSON text")
    instance_id = host_string(body["Metadata"].get("instanceId"), "Metadata.instanceId")
    if not isinstance(instance_id, str):
        raise BadRequest("Metadata.instanceId does not hold a string")
    executor = worker._ActivityExecutor(REGISTRY, log, CONVERTER)
    output = executor.execute(instance_id, function, UNKNOWN_TASK_ID, input_text)
    return_value = None if output is None else json.loads(output)
    return return_value, [f"{function} for {instance_id}"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    bindings: dict = {}

    def log_message(self, format, *args):
        log.debug(format, *args)

    def reply(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/":
            self.reply(200, b"ready", "text/plain")
        else:
            self.reply(404, b"", "text/plain")

    def do_POST(self):
        length = self.headers.get("Content-Length")
        if length is None:
            self.reply(411, b"", "text/plain")
            return
        raw = self.rfile.read(int(length))
        function = self.path.lstrip("/")
        if function not in self.bindings:
            self.reply(404, f"no function {function}".encode(), "text/plain")
            return
        kind, binding = self.bindings[function]
        try:
            body = json.loads(raw)
            if not isinstance(body.get("Data"), dict) or not isinstance(body.get("Metadata"), dict):
                raise BadRequest("the body has no Data and Metadata objects")
            if kind == "orchestrationtrigger":
                return_value, logs = run_orchestrator(function, binding, body)
            else:
                return_value, logs = run_activity(function, binding, body)
        except (BadRequest, json.JSONDecodeError, AttributeError) as e:
            log.error("%s: not the host's format: %s", function, e)
            self.reply(400, str(e).encode(), "text/plain")
            return
        except Exception:
            log.exception("%s failed", function)
            self.reply(500, b"", "text/plain")
            return
        reply = {"Outputs": {}, "Logs": logs, "ReturnValue": return_value}
        self.reply(200, json.dumps(reply).encode())


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    port = int(os.environ["FUNCTIONS_CUSTOMHANDLER_PORT"])
    Handler.bindings = trigger_bindings(Path(os.environ["FUNCTIONS_APP_ROOT_PATH"]))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    log.info("handler pid %d listening on 127.0.0.1:%d", os.getpid(), port)
    server.serve_forever()


if __name__ == "__main__":
    main()
