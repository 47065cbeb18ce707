# Instance management through the plain gRPC SDK (no taskhub header: the default hub).

ATTEMPTS = {}


def echo(ctx, x):
    return x


def flaky(ctx, key):
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] == 1:
        raise RuntimeError("first attempt fails")
    return f"ok after {ATTEMPTS[key]}"


def simple(ctx, x):
    y = yield ctx.call_activity(echo, input=x)
    return y


def with_child(ctx, x):
    r = yield ctx.call_sub_orchestrator(simple, input=x, instance_id=ctx.instance_id + "-c")
    return r


def rewindable(ctx, key):
    a = yield ctx.call_activity(echo, input="before")
    b = yield ctx.call_activity(flaky, input=key)
    return [a, b]


def rewind_parent(ctx, key):
    r = yield ctx.call_sub_orchestrator(rewindable, input=key, instance_id=ctx.instance_id + "-sub")
    return {"child": r}


def waiter(ctx, _):
    v = yield ctx.wait_for_external_event("go")
    return v


w = grpc_worker()
for o in [simple, with_child, rewindable, waiter, rewind_parent]:
    w.add_orchestrator(o)
w.add_activity(echo)
w.add_activity(flaky)
w.start()
c = grpc_client()
res = {}


def code_of(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


# Restart under the same ID and under a new one.
i = c.schedule_new_orchestration(simple, input="r1", instance_id="restart-me")
c.wait_for_orchestration_completion(i, timeout=60)
first_exec = c._stub.GetInstance(pb.GetInstanceRequest(instanceId=i)).orchestrationState.executionId.value
same = c.restart_orchestration(i)
s = c.wait_for_orchestration_completion(same, timeout=60)
new = c.restart_orchestration(i, restart_with_new_instance_id=True)
s2 = c.wait_for_orchestration_completion(new, timeout=60)
second_exec = c._stub.GetInstance(pb.GetInstanceRequest(instanceId=i)).orchestrationState.executionId.value
res["restart"] = [same == i, s.get_output(), new != i, s2.get_output(), first_exec != second_exec]

# A running instance restarted under a new ID; under its own ID it is refused.
i = c.schedule_new_orchestration(waiter, input="w")
c.wait_for_orchestration_start(i, timeout=60)
res["restart_running_same"] = code_of(lambda: c.restart_orchestration(i))
other = c.restart_orchestration(i, restart_with_new_instance_id=True)
res["restart_running_new"] = status_name(c.wait_for_orchestration_start(other, timeout=60))
c.raise_orchestration_event(i, "go", data=1)
c.raise_orchestration_event(other, "go", data=2)
res["waiters"] = [c.wait_for_orchestration_completion(i, timeout=60).get_output(),
                  c.wait_for_orchestration_completion(other, timeout=60).get_output()]

# Reuse policy: a running instance is not replaced unless the policy allows it.
i = c.schedule_new_orchestration(waiter, instance_id="reuse-me")
c.wait_for_orchestration_start(i, timeout=60)
res["reuse_running"] = code_of(lambda: c.schedule_new_orchestration(waiter, instance_id="reuse-me"))
policy = pb.OrchestrationIdReusePolicy(replaceableStatus=[pb.ORCHESTRATION_STATUS_COMPLETED])
res["reuse_policy_refuses"] = code_of(lambda: c.schedule_new_orchestration(waiter, instance_id="reuse-me",
                                                                           reuse_id_policy=policy))
# Replacing a running instance is only accepted together with terminated ones (see scheduler_parity.py).
running = pb.OrchestrationIdReusePolicy(replaceableStatus=[pb.ORCHESTRATION_STATUS_RUNNING,
                                                           pb.ORCHESTRATION_STATUS_TERMINATED])
c.schedule_new_orchestration(simple, input="replaced", instance_id="reuse-me", reuse_id_policy=running)
res["reuse_replaced"] = c.wait_for_orchestration_completion("reuse-me", timeout=60).get_output()

# Limits and missing instances.
res["bad_id"] = code_of(lambda: c.schedule_new_orchestration(simple, instance_id="x" * 101))
res["entity_like_id"] = code_of(lambda: c.schedule_new_orchestration(simple, instance_id="@a@b"))
res["too_big"] = code_of(lambda: c.schedule_new_orchestration(simple, input="a" * (1024 * 1024 + 10),
                                                              instance_id="too-big"))
res["too_big_created"] = c.get_orchestration_state("too-big") is not None
res["raise_missing"] = code_of(lambda: c.raise_orchestration_event("nope", "go"))
res["get_missing"] = c.get_orchestration_state("nope") is None
i = c.schedule_new_orchestration(waiter)
c.wait_for_orchestration_start(i, timeout=60)
res["raise_too_big"] = code_of(lambda: c.raise_orchestration_event(i, "go", data="b" * (1024 * 1024 + 10)))
c.raise_orchestration_event(i, "go", data="small")
res["after_too_big"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()

# Scheduled start: not started before its time.
at = datetime.now(timezone.utc) + timedelta(seconds=1.5)
i = c.schedule_new_orchestration(simple, input="late", start_at=at)
res["scheduled_pending"] = status_name(c.get_orchestration_state(i))
s = c.wait_for_orchestration_completion(i, timeout=60)
res["scheduled_ran_after"] = s.get_output() == "late" and datetime.now(timezone.utc) >= at

# History as the scheduler records it.
i = c.schedule_new_orchestration(simple, input="h")
c.wait_for_orchestration_completion(i, timeout=60)
events = []
for chunk in c._stub.StreamInstanceHistory(pb.StreamInstanceHistoryRequest(instanceId=i)):
    events += [e.WhichOneof("eventType") for e in chunk.events]
res["history"] = events

# Rewind a failed instance: the failed activity runs again.
i = c.schedule_new_orchestration(rewindable, input="k1")
s = c.wait_for_orchestration_completion(i, timeout=60)
res["before_rewind"] = status_name(s)
c.rewind_orchestration(i, reason="try again")
s = c.wait_for_orchestration_completion(i, timeout=60)
res["after_rewind"] = [status_name(s), s.get_output()]
res["rewind_completed"] = code_of(lambda: c.rewind_orchestration(i))
i = c.schedule_new_orchestration(rewind_parent, input="k2", instance_id="rw-parent")
s = c.wait_for_orchestration_completion(i, timeout=60)
res["sub_before_rewind"] = [status_name(s), status_name(c.get_orchestration_state("rw-parent-sub"))]
c.rewind_orchestration(i, reason="again")
s = c.wait_for_orchestration_completion(i, timeout=60)
res["sub_after_rewind"] = [status_name(s), s.get_output(),
                           status_name(c.get_orchestration_state("rw-parent-sub"))]

# Purge: running instances stay, finished ones (and their children) go.
i = c.schedule_new_orchestration(with_child, input="p", instance_id="purge-parent")
c.wait_for_orchestration_completion(i, timeout=60)
r = c.purge_orchestration(i, recursive=True)
res["purge_recursive"] = [r.deleted_instance_count, c.get_orchestration_state("purge-parent-c") is None]
i = c.schedule_new_orchestration(waiter, instance_id="purge-running")
c.wait_for_orchestration_start(i, timeout=60)
res["purge_running"] = code_of(lambda: c.purge_orchestration(i))
c.terminate_orchestration(i)
c.wait_for_orchestration_completion(i, timeout=60)

# Query and list with paging (this hub holds only this scenario's instances).
ids = [c.schedule_new_orchestration(simple, input=n, instance_id=f"q-{n:02d}") for n in range(7)]
for n in ids:
    c.wait_for_orchestration_completion(n, timeout=60)
from google.protobuf import wrappers_pb2
pages = []
token = None
while True:
    q = pb.InstanceQuery(maxInstanceCount=3, instanceIdPrefix=wrappers_pb2.StringValue(value="q-"),
                         fetchInputsAndOutputs=True)
    if token is not None:
        q.continuationToken.CopyFrom(token)
    resp = c._stub.QueryInstances(pb.QueryInstancesRequest(query=q))
    pages.append([st.instanceId for st in resp.orchestrationState])
    if not resp.HasField("continuationToken"):
        break
    token = resp.continuationToken
res["query_pages"] = pages
everything = c.get_all_orchestration_states(dtc.OrchestrationQuery(instance_id_prefix="q-", max_instance_count=2))
res["query_all"] = sorted(st.instance_id for st in everything)
listed = []
page = c.list_instance_ids(runtime_status=[dtc.OrchestrationStatus.COMPLETED], page_size=4)
listed.append(page.items)
while page.continuation_token:
    page = c.list_instance_ids(runtime_status=[dtc.OrchestrationStatus.COMPLETED], page_size=4,
                               continuation_token=page.continuation_token)
    listed.append(page.items)
res["list_pages"] = [len(p) for p in listed]
res["list_total"] = sum(len(p) for p in listed)
r = c.purge_orchestrations_by(runtime_status=[dtc.OrchestrationStatus.COMPLETED])
res["purge_filter"] = r.deleted_instance_count
res["after_purge"] = len(c.get_all_orchestration_states(dtc.OrchestrationQuery(
    runtime_status=[dtc.OrchestrationStatus.COMPLETED])))
w.stop()
emit(res)
