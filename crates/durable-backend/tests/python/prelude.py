# Shared set-up for the interop scenarios: connection details come from the Rust test.
import json
import os
import sys
import time
import logging
from datetime import datetime, timedelta, timezone

import grpc
from durabletask import client as dtc
from durabletask import task, worker as dtw
from durabletask.entities import EntityInstanceId, EntityContext
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.azuremanaged.client import DurableTaskSchedulerClient
from durabletask.azuremanaged.worker import DurableTaskSchedulerWorker

logging.basicConfig(level=logging.WARNING)


# A failed check must end the script at once: the SDK's worker threads would otherwise keep it alive until the
# Rust side's time limit, and the traceback would be lost.
def _fail_fast(kind, value, tb):
    sys.__excepthook__(kind, value, tb)
    sys.stderr.flush()
    os._exit(1)


sys.excepthook = _fail_fast
ENDPOINT = os.environ["DURABLE_ENDPOINT"]
HUB = os.environ["DURABLE_HUB"]


# Constructed exactly as for the scheduler emulator: an http:// endpoint, a hub, no credential.
def dts_worker():
    return DurableTaskSchedulerWorker(host_address=ENDPOINT, taskhub=HUB, token_credential=None)


def dts_client():
    return DurableTaskSchedulerClient(host_address=ENDPOINT, taskhub=HUB, token_credential=None)


def grpc_worker():
    return dtw.TaskHubGrpcWorker(host_address=ENDPOINT)


def grpc_client():
    return dtc.TaskHubGrpcClient(host_address=ENDPOINT)


def wait_until(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def status_name(state):
    return None if state is None else state.runtime_status.name


def emit(result):
    print("RESULT " + json.dumps(result), flush=True)
