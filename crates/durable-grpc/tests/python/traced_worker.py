"""A Python SDK worker that records its OpenTelemetry spans, for the trace interop test.

Usage: traced_worker.py HOST:PORT. Prints "ready" once connected, runs until a line arrives on stdin, then prints
each span it recorded as one JSON line and "end".
"""

import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from durabletask import task, worker  # noqa: E402  (after the tracer provider, which the SDK looks up)


def py_activity(ctx: task.ActivityContext, name: str) -> str:
    return f"py {name}"


def py_orch(ctx: task.OrchestrationContext, name: str):
    result = yield ctx.call_activity("RustActivity", input=name)
    return result


w = worker.TaskHubGrpcWorker(host_address=sys.argv[1])
w.add_activity(py_activity)
w.add_orchestrator(py_orch)
w.use_work_item_filters()
w.start()
print("ready", flush=True)
sys.stdin.readline()
w.stop()
for span in exporter.get_finished_spans():
    print(json.dumps({
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent": format(span.parent.span_id, "016x") if span.parent else None,
    }), flush=True)
print("end", flush=True)
