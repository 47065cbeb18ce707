# What the scheduler does in details its SDK users can see: scheduled entity signals from orchestrations, entities
# that vanish once empty, the recorded history, reuse policies that make no sense, activity versions under
# work-item filters. Each part uses its own task hub so the workers with filters never meet the others' work.
from durabletask.worker import (ActivityWorkItemFilter, OrchestrationWorkItemFilter, VersioningOptions,
                                VersionMatchStrategy, WorkItemFilters)


def worker_on(hub):
    return DurableTaskSchedulerWorker(host_address=ENDPOINT, taskhub=hub, token_credential=None)


def client_on(hub):
    return DurableTaskSchedulerClient(host_address=ENDPOINT, taskhub=hub, token_credential=None)


def rpc_error(fn):
    try:
        fn()
        return ["OK", None]
    except grpc.RpcError as e:
        return [e.code().name, e.details()]


def recorder(ctx: EntityContext, input):
    # The entity's own clock reading when the operation runs, to compare with the signal's time.
    if ctx.operation == "stamp":
        ctx.set_state(datetime.now(timezone.utc).isoformat())
    elif ctx.operation == "delete":
        ctx.set_state(None)
    elif ctx.operation == "set":
        ctx.set_state(input)


DELAY = timedelta(seconds=3)


def delayed_signal(ctx, key):
    at = ctx.current_utc_datetime + DELAY
    ctx.signal_entity(EntityInstanceId("recorder", key), "stamp", signal_time=at)
    return at.isoformat()


def lock_only(ctx, key):
    # Locks an entity that never gets state; once the lock is gone nothing of the entity remains.
    with (yield ctx.lock_entities([EntityInstanceId("recorder", key)])):
        pass
    return "unlocked"


def greet(ctx, name):
    return f"Hello, {name}!"


def child(ctx, _):
    return "child done"


def mixed(ctx, _):
    g = yield ctx.call_activity(greet, input="World")
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=200))
    c = yield ctx.call_sub_orchestrator(child)
    return [g, c]


def waits(ctx, value):
    yield ctx.wait_for_external_event("finish")
    return value


def quick(ctx, value):
    return value


def versioned(ctx, name):
    greeting = yield ctx.call_activity(greet, input=name)
    return [ctx.version, greeting]


res = {}

# --- 1 and 2: entities --------------------------------------------------------------------------------------
w = worker_on("parity-entities")
w.add_entity(recorder)
w.add_orchestrator(delayed_signal)
w.add_orchestrator(lock_only)
w.start()
c = client_on("parity-entities")


def state(key):
    m = c.get_entity(EntityInstanceId("recorder", key))
    return None if m is None or m.get_state() is None else json.loads(m.get_state())


i = c.schedule_new_orchestration(delayed_signal, input="later")
s = c.wait_for_orchestration_completion(i, timeout=60)
# The orchestration's clock is naive UTC.
due = datetime.fromisoformat(s.get_output()).replace(tzinfo=timezone.utc)
res["signal_before_due"] = state("later")
stamped = wait_until(lambda: state("later"), what="the scheduled signal")
res["signal_ran_after_due"] = datetime.fromisoformat(stamped) >= due


def listed(prefix):
    found = c.get_all_entities(dtc.EntityQuery(instance_id_starts_with=prefix, include_transient=True))
    return sorted(m.id.key for m in found)


c.signal_entity(EntityInstanceId("recorder", "kept"), "set", "v")
wait_until(lambda: state("kept") == "v", what="kept has state")
c.signal_entity(EntityInstanceId("recorder", "deleted"), "set", "v")
wait_until(lambda: state("deleted") == "v", what="deleted has state")
c.signal_entity(EntityInstanceId("recorder", "deleted"), "delete")
# Gone at once from queries that include transient entities, not only from GetEntity.
wait_until(lambda: listed("@recorder@deleted") == [], what="the deleted entity to vanish")
res["deleted_get"] = c.get_entity(EntityInstanceId("recorder", "deleted")) is None
c.signal_entity(EntityInstanceId("recorder", "never"), "delete")
wait_until(lambda: listed("@recorder@never") == [], what="the never-set entity to vanish")
i = c.schedule_new_orchestration(lock_only, input="lock-only")
res["lock_only"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()
wait_until(lambda: listed("@recorder@lock") == [], what="the lock-only entity to vanish")
res["entities_left"] = listed("@recorder@")
r = c.clean_entity_storage(remove_empty_entities=True, release_orphaned_locks=True)
res["cleaned"] = [r.empty_entities_removed, r.orphaned_locks_released]
w.stop()

# --- 3: history ---------------------------------------------------------------------------------------------
w = worker_on("parity-history")
w.add_orchestrator(mixed)
w.add_orchestrator(child)
w.add_activity(greet)
w.start()
c = client_on("parity-history")
i = c.schedule_new_orchestration(mixed)
res["mixed"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()
res["history"] = [type(e).__name__.removesuffix("Event") for e in c.get_orchestration_history(i)]
w.stop()

# --- 4: reuse policies --------------------------------------------------------------------------------------
S = pb.OrchestrationStatus
EVERY = [S.Value(n) for n in ["ORCHESTRATION_STATUS_COMPLETED", "ORCHESTRATION_STATUS_FAILED",
                               "ORCHESTRATION_STATUS_TERMINATED", "ORCHESTRATION_STATUS_CANCELED",
                               "ORCHESTRATION_STATUS_PENDING", "ORCHESTRATION_STATUS_RUNNING",
                               "ORCHESTRATION_STATUS_SUSPENDED"]]


def replaceable_except(*names):
    # How the SDKs turn "dedupe statuses" into the wire policy: every status not named may be replaced.
    return pb.OrchestrationIdReusePolicy(replaceableStatus=[s for s in EVERY if S.Name(s) not in names])


w = worker_on("parity-reuse")
w.add_orchestrator(waits)
w.add_orchestrator(quick)
w.start()
c = client_on("parity-reuse")
c.schedule_new_orchestration(waits, input="original", instance_id="running-one")
c.wait_for_orchestration_start("running-one", timeout=60)
senseless = replaceable_except("ORCHESTRATION_STATUS_TERMINATED", "ORCHESTRATION_STATUS_RUNNING",
                               "ORCHESTRATION_STATUS_PENDING")
res["senseless_running"] = rpc_error(lambda: c.schedule_new_orchestration(
    waits, input="replacement", instance_id="running-one", reuse_id_policy=senseless))
res["senseless_fresh_id"] = rpc_error(lambda: c.schedule_new_orchestration(
    waits, input="replacement", instance_id="not-there", reuse_id_policy=senseless))
res["fresh_id_created"] = c.get_orchestration_state("not-there") is not None
res["dedupe_running"] = rpc_error(lambda: c.schedule_new_orchestration(
    waits, input="replacement", instance_id="running-one",
    reuse_id_policy=replaceable_except("ORCHESTRATION_STATUS_RUNNING")))
s = c.get_orchestration_state("running-one", fetch_payloads=True)
res["untouched"] = [status_name(s), s.serialized_input]
c.suspend_orchestration("running-one")
wait_until(lambda: status_name(c.get_orchestration_state("running-one")) == "SUSPENDED", what="suspended")
res["senseless_suspended"] = rpc_error(lambda: c.schedule_new_orchestration(
    waits, input="replacement", instance_id="running-one", reuse_id_policy=senseless))[0]
s = c.get_orchestration_state("running-one", fetch_payloads=True)
res["still_suspended"] = [status_name(s), s.serialized_input]
# Every status replaceable (an empty dedupe list): the suspended instance is replaced.
c.schedule_new_orchestration(quick, input="replacement", instance_id="running-one",
                             reuse_id_policy=replaceable_except())
s = c.wait_for_orchestration_completion("running-one", timeout=60)
res["replaced"] = [status_name(s), s.name, s.get_output()]
w.stop()

# --- 5: activity versions under work-item filters -----------------------------------------------------------
w = worker_on("parity-versions")
w.add_orchestrator(versioned)
w.add_activity(greet)
w.use_work_item_filters(WorkItemFilters(
    orchestrations=[OrchestrationWorkItemFilter(name=task.get_name(versioned), versions=["3.0.0"])],
    activities=[ActivityWorkItemFilter(name=task.get_name(greet), versions=["3.0.0"])]))
w.start()
c = client_on("parity-versions")
i = c.schedule_new_orchestration(versioned, input="explicit", version="3.0.0")
s = c.wait_for_orchestration_completion(i, timeout=60)
res["explicit_filters"] = [status_name(s), s.get_output()]
w.stop()

w = worker_on("parity-strict")
w.add_orchestrator(versioned)
w.add_activity(greet)
w.use_versioning(VersioningOptions(version="2.0", match_strategy=VersionMatchStrategy.STRICT))
w.use_work_item_filters()
w.start()
c = client_on("parity-strict")
i = c.schedule_new_orchestration(versioned, input="strict", version="2.0")
s = c.wait_for_orchestration_completion(i, timeout=60)
res["strict_auto_filters"] = [status_name(s), s.get_output()]
w.stop()
emit(res)
