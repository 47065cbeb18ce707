# The Python SDK's worker versioning, scenario by scenario, against the backend at DURABLE_ENDPOINT. Prints one
# RESULT line: per instance [status, output, failure type, failure message].
import json
import os
import sys

from durabletask import worker as dtw
from durabletask.azuremanaged.client import DurableTaskSchedulerClient
from durabletask.azuremanaged.worker import DurableTaskSchedulerWorker

ENDPOINT = os.environ["DURABLE_ENDPOINT"]
M = dtw.VersionMatchStrategy
F = dtw.VersionFailureStrategy


def Versioned(ctx, _):
    return ctx.version


def Child(ctx, _):
    return ctx.version


def Parent(ctx, _):
    child = yield ctx.call_sub_orchestrator("Child")
    return [ctx.version, child]


def run(options, starts):
    worker = DurableTaskSchedulerWorker(host_address=ENDPOINT, taskhub="default", token_credential=None)
    for fn in (Versioned, Parent, Child):
        worker.add_orchestrator(fn)
    worker.use_versioning(options)
    worker.start()
    client = DurableTaskSchedulerClient(host_address=ENDPOINT, taskhub="default", token_credential=None)
    for instance_id, name, version in starts:
        client.schedule_new_orchestration(name, instance_id=instance_id, version=version)
    out = {}
    for instance_id, _, _ in starts:
        state = client.wait_for_orchestration_completion(instance_id, timeout=60)
        failure = state.failure_details
        output = json.loads(state.serialized_output) if state.serialized_output else None
        out[instance_id] = [
            state.runtime_status.name,
            output,
            failure.error_type if failure else None,
            failure.message if failure else None,
        ]
    worker.stop()
    return out


scenarios = json.loads(sys.argv[1])
result = {}
for scenario in scenarios:
    options = dtw.VersioningOptions(
        version=scenario["version"],
        default_version=scenario.get("default_version"),
        match_strategy=getattr(M, scenario["match"]),
        failure_strategy=getattr(F, scenario["failure"]),
    )
    result.update(run(options, [tuple(s) for s in scenario["starts"]]))
print("RESULT " + json.dumps(result), flush=True)
