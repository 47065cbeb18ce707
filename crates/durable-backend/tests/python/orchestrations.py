# Orchestration features through the scheduler-flavoured SDK (taskhub header, no auth).


def hello(ctx, name):
    return f"Hello {name}!"


def boom(ctx, _):
    raise ValueError("kaboom")


def chain(ctx, _):
    out = []
    for city in ["Tokyo", "Seattle", "London"]:
        out.append((yield ctx.call_activity(hello, input=city)))
    return out


def fan(ctx, n):
    results = yield task.when_all([ctx.call_activity(hello, input=str(i)) for i in range(n)])
    return len(results)


def sleeper(ctx, _):
    yield ctx.create_timer(timedelta(seconds=1))
    return "woke"


def approval(ctx, _):
    ctx.set_custom_status("waiting")
    a = yield ctx.wait_for_external_event("approve")
    b = yield ctx.wait_for_external_event("second")
    return [a, b]


def child(ctx, x):
    return {"parent": ctx.parent_instance_id, "x": x}


def parent(ctx, _):
    r = yield ctx.call_sub_orchestrator(child, input=7, instance_id=ctx.instance_id + "-child")
    return r


def counter(ctx, n):
    if n < 3:
        ctx.continue_as_new(n + 1)
        return
    return n


def waits_forever(ctx, _):
    yield ctx.wait_for_external_event("never")


def tree(ctx, _):
    yield ctx.call_sub_orchestrator(waits_forever, instance_id=ctx.instance_id + "-leaf")


def failing(ctx, _):
    yield ctx.call_activity(boom)


def sender(ctx, target):
    ctx.send_event("no-such-instance", "ping", data=0)
    ctx.send_event(target, "ping", data="from sender")
    return "sent"


def receiver(ctx, _):
    v = yield ctx.wait_for_external_event("ping")
    return v


CHILD_ATTEMPTS = {"n": 0}


def shaky_child(ctx, _):
    if not ctx.is_replaying:
        CHILD_ATTEMPTS["n"] += 1
    if CHILD_ATTEMPTS["n"] < 3:
        raise RuntimeError("not yet")
    return "steady"


def retrying_parent(ctx, _):
    policy = task.RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=5)
    r = yield ctx.call_sub_orchestrator(shaky_child, retry_policy=policy)
    return r


def give_up_parent(ctx, _):
    policy = task.RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=2)
    try:
        yield ctx.call_sub_orchestrator(failing, retry_policy=policy)
    except task.TaskFailedError:
        return "gave up"


w = dts_worker()
for o in [chain, fan, sleeper, approval, child, parent, counter, waits_forever, tree, failing, shaky_child,
          retrying_parent, give_up_parent, sender, receiver]:
    w.add_orchestrator(o)
w.add_activity(hello)
w.add_activity(boom)
w.start()
c = dts_client()
res = {}

i = c.schedule_new_orchestration(chain, tags={"team": "blue"})
s = c.wait_for_orchestration_completion(i, timeout=60)
res["chain"] = s.get_output()
raw = c._stub.GetInstance(pb.GetInstanceRequest(instanceId=i, getInputsAndOutputs=True))
res["tags"] = dict(raw.orchestrationState.tags)

i = c.schedule_new_orchestration(fan, input=20)
res["fan"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()

i = c.schedule_new_orchestration(sleeper)
s = c.wait_for_orchestration_completion(i, timeout=60)
res["timer"] = s.get_output()
res["timer_instance"] = i
res["updated_after_timer"] = (s.last_updated_at - s.created_at).total_seconds() >= 0.9

i = c.schedule_new_orchestration(approval)
wait_until(lambda: (c.get_orchestration_state(i) or None) and c.get_orchestration_state(i).serialized_custom_status,
           what="custom status")
res["custom_status_running"] = [status_name(c.get_orchestration_state(i)),
                                c.get_orchestration_state(i).get_custom_status()]
c.suspend_orchestration(i)
wait_until(lambda: status_name(c.get_orchestration_state(i)) == "SUSPENDED", what="suspended")
c.raise_orchestration_event(i, "approve", data="yes")
c.raise_orchestration_event(i, "second", data="also")
time.sleep(0.5)
res["held_while_suspended"] = status_name(c.get_orchestration_state(i))
c.resume_orchestration(i)
res["approval"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()

i = c.schedule_new_orchestration(parent)
res["sub"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()
res["sub_expected_parent"] = i

i = c.schedule_new_orchestration(counter, input=0)
first = c._stub.GetInstance(pb.GetInstanceRequest(instanceId=i)).orchestrationState.executionId.value
s = c.wait_for_orchestration_completion(i, timeout=60)
last = c._stub.GetInstance(pb.GetInstanceRequest(instanceId=i)).orchestrationState.executionId.value
res["can"] = [s.get_output(), first != last]

i = c.schedule_new_orchestration(tree)
wait_until(lambda: status_name(c.get_orchestration_state(i + "-leaf")) == "RUNNING", what="leaf running")
c.terminate_orchestration(i, output="stop", recursive=True)
s = c.wait_for_orchestration_completion(i, timeout=60)
leaf = c.wait_for_orchestration_completion(i + "-leaf", timeout=60)
res["terminate"] = [status_name(s), s.get_output(), status_name(leaf)]
c.terminate_orchestration(i, output="again")
res["terminate_again"] = [status_name(c.get_orchestration_state(i)), c.get_orchestration_state(i).get_output()]

i = c.schedule_new_orchestration(failing)
s = c.wait_for_orchestration_completion(i, timeout=60)
res["failed"] = [status_name(s), s.failure_details.error_type.endswith("TaskFailedError"), "kaboom" in s.failure_details.message]

r = c.schedule_new_orchestration(receiver)
c.wait_for_orchestration_start(r, timeout=60)
i = c.schedule_new_orchestration(sender, input=r)
res["send_event"] = [c.wait_for_orchestration_completion(i, timeout=60).get_output(),
                     c.wait_for_orchestration_completion(r, timeout=60).get_output(),
                     c.get_orchestration_state("no-such-instance") is None]

i = c.schedule_new_orchestration(retrying_parent)
s = c.wait_for_orchestration_completion(i, timeout=60)
res["sub_retry"] = [status_name(s), s.get_output(), CHILD_ATTEMPTS["n"]]
i = c.schedule_new_orchestration(give_up_parent)
res["sub_retry_gives_up"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()

# Two workers on one hub share the work.
w2 = dts_worker()
w2.add_activity(hello)
w2.add_orchestrator(fan)
w2.start()
i = c.schedule_new_orchestration(fan, input=40)
res["fan_two_workers"] = c.wait_for_orchestration_completion(i, timeout=60).get_output()
w2.stop()

try:
    c._stub.WaitForInstanceCompletion(pb.GetInstanceRequest(instanceId=c.schedule_new_orchestration(waits_forever)),
                                      timeout=0.5)
    res["deadline"] = "returned"
except grpc.RpcError as e:
    res["deadline"] = e.code().name

w.stop()
emit(res)
