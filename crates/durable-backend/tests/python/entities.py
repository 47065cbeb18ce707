# Entities: signals, calls, critical sections, state deletion, scheduled signals, queries and cleaning.
from google.protobuf import wrappers_pb2


def counter(ctx: EntityContext, input):
    op = ctx.operation
    if op == "add":
        value = ctx.get_state(int, 0) + input
        ctx.set_state(value)
        return value
    if op == "get":
        return ctx.get_state(int, 0)
    if op == "delete":
        ctx.set_state(None)
        return None
    if op == "fail":
        raise ValueError("entity says no")
    if op == "forward":
        # Entity-to-entity signal and an orchestration started by an entity.
        ctx.signal_entity(EntityInstanceId("counter", input), "add", 11)
        ctx.schedule_new_orchestration("signaller", input=input + "-o", instance_id="from-entity-" + input)
        return None
    raise ValueError(f"unknown operation {op}")


def caller(ctx, key):
    e = EntityInstanceId("counter", key)
    v = yield ctx.call_entity(e, "add", 3)
    try:
        yield ctx.call_entity(e, "fail")
        failed = "no"
    except task.TaskFailedError:
        failed = "caught"
    return [v, failed]


def locker(ctx, keys):
    ids = [EntityInstanceId("counter", k) for k in keys]
    with (yield ctx.lock_entities(ids)):
        yield ctx.wait_for_external_event("release")
        v = yield ctx.call_entity(ids[0], "add", 1)
    return v


def signaller(ctx, key):
    ctx.signal_entity(EntityInstanceId("counter", key), "add", 40)
    return "sent"


w = dts_worker()
w.add_entity(counter)
for o in [caller, locker, signaller]:
    w.add_orchestrator(o)
w.start()
c = dts_client()
res = {}


def state(key):
    m = c.get_entity(EntityInstanceId("counter", key))
    return None if m is None else m.get_state(int)


def code_of(fn):
    try:
        fn()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


c.signal_entity(EntityInstanceId("counter", "a"), "add", 5)
c.signal_entity(EntityInstanceId("counter", "a"), "add", 5)
res["signals"] = wait_until(lambda: state("a") == 10 and state("a"), what="two signals")

i = c.schedule_new_orchestration(caller, input="b")
res["call"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()
res["call_state"] = state("b")

i = c.schedule_new_orchestration(signaller, input="s")
c.wait_for_orchestration_completion(i, timeout=60)
res["orchestration_signal"] = wait_until(lambda: state("s") == 40 and state("s"), what="signal from orchestration")

c.signal_entity(EntityInstanceId("counter", "fw"), "forward", "fwd")
res["entity_signal"] = wait_until(lambda: state("fwd") == 11 and state("fwd"), what="entity-to-entity signal")
res["entity_started"] = c.wait_for_orchestration_completion("from-entity-fwd", timeout=60).get_output()
res["entity_started_signal"] = wait_until(lambda: state("fwd-o") == 40 and state("fwd-o"),
                                          what="signal from the entity-started orchestration")

# Critical section: a client signal waits while the orchestration holds the lock.
c.signal_entity(EntityInstanceId("counter", "l1"), "add", 1)
wait_until(lambda: state("l1") == 1, what="l1 exists")
i = c.schedule_new_orchestration(locker, input=["l1", "l2"])
wait_until(lambda: (c.get_entity(EntityInstanceId("counter", "l1")) or None)
           and c.get_entity(EntityInstanceId("counter", "l1"))._locked_by, what="lock held")
res["locked_by"] = c.get_entity(EntityInstanceId("counter", "l1"))._locked_by == i
c.signal_entity(EntityInstanceId("counter", "l1"), "add", 100)
time.sleep(0.5)
res["held_back"] = state("l1")
c.raise_orchestration_event(i, "release")
res["in_lock"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()
res["after_unlock"] = wait_until(lambda: state("l1") == 102 and state("l1"), what="held signal applied")
res["unlocked"] = c._stub.GetEntity(pb.GetEntityRequest(instanceId="@counter@l1")).entity.HasField("lockedBy")

# Delete the state, then create the entity again.
c.signal_entity(EntityInstanceId("counter", "d"), "add", 2)
wait_until(lambda: state("d") == 2, what="d exists")
c.signal_entity(EntityInstanceId("counter", "d"), "delete")
wait_until(lambda: c.get_entity(EntityInstanceId("counter", "d")) is None, what="d deleted")
res["deleted"] = True
c.signal_entity(EntityInstanceId("counter", "d"), "add", 7)
res["recreated"] = wait_until(lambda: state("d") == 7 and state("d"), what="d recreated")

# A scheduled signal is not delivered early.
at = datetime.now(timezone.utc) + timedelta(seconds=1.5)
c.signal_entity(EntityInstanceId("counter", "t"), "add", 1, signal_time=at)
time.sleep(0.3)
res["early"] = state("t")
wait_until(lambda: state("t") == 1, what="scheduled signal")
res["on_time"] = datetime.now(timezone.utc) >= at

# Limits.
res["long_key"] = code_of(lambda: c._stub.SignalEntity(pb.SignalEntityRequest(
    instanceId="@counter@" + "k" * 101, name="add", requestId="r1")))
res["not_entity"] = code_of(lambda: c._stub.SignalEntity(pb.SignalEntityRequest(
    instanceId="counter", name="add", requestId="r2")))

# Query (with paging) and clean.
found = c.get_all_entities(dtc.EntityQuery(instance_id_starts_with="@counter@", page_size=2))
res["query"] = sorted(m.id.key for m in found)
resp = c._stub.QueryEntities(pb.QueryEntitiesRequest(query=pb.EntityQuery(
    instanceIdStartsWith=wrappers_pb2.StringValue(value="@counter@"), includeState=True,
    pageSize=wrappers_pb2.Int32Value(value=2))))
res["first_page"] = [len(resp.entities), resp.HasField("continuationToken")]
# An entity left without state is gone at once, even from queries that include transient entities, so cleaning
# finds nothing to remove: "gone" (state deleted), "l2" (only ever locked) and "fw" (never given state).
c.signal_entity(EntityInstanceId("counter", "gone"), "delete")
wait_until(lambda: len(c.get_all_entities(dtc.EntityQuery(instance_id_starts_with="@counter@gone",
                                                          include_transient=True))) == 0,
           what="the stateless entity to vanish")
res["transient"] = sorted(m.id.key for m in c.get_all_entities(dtc.EntityQuery(
    instance_id_starts_with="@counter@", include_transient=True)))
r = c.clean_entity_storage()
res["cleaned"] = [r.empty_entities_removed, r.orphaned_locks_released]
w.stop()
emit(res)
