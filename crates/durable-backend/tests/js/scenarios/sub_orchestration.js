// Sub-orchestrations: the child sees its parent, the default child id is derived from the parent's execution,
// an explicit child id is kept, and a failing child fails the parent's task with the child's details.
"use strict";
const { sdk, emit, statusName, parse, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedActivity("double", (_ctx, n) => n * 2);
    worker.addNamedOrchestrator("child", async function* (ctx, n) {
      const doubled = yield ctx.callActivity("double", n);
      return { id: ctx.instanceId, parent: ctx.parent ?? null, doubled };
    });
    worker.addNamedOrchestrator("failing_child", async function* () {
      throw new Error("child broke");
    });
    worker.addNamedOrchestrator("parent", async function* (ctx, n) {
      const implicit = yield ctx.callSubOrchestrator("child", n);
      const named = yield ctx.callSubOrchestrator("child", n + 1, { instanceId: `${ctx.instanceId}-named` });
      let failure = null;
      try {
        yield ctx.callSubOrchestrator("failing_child", null, { instanceId: `${ctx.instanceId}-failing` });
      } catch (e) {
        failure = {
          isTaskFailed: e instanceof sdk.TaskFailedError,
          message: e.details ? e.details.message : String(e),
        };
      }
      return { implicit, named, failure };
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("parent", 5, { instanceId: "parent-1" });
    const done = await client.waitForOrchestrationCompletion(id, true, 90);
    const out = parse(done.serializedOutput);
    emit("status", statusName(done));
    emit("implicit_parent", out.implicit.parent);
    emit("implicit_doubled", out.implicit.doubled);
    // Without an id the SDK names the child "<parent execution id>:<task id, 4 hex digits>", so the parent's
    // work item must carry its execution id.
    const started = (await client.getOrchestrationHistory(id)).find((e) => e.type === "ExecutionStarted");
    const executionId = started.orchestrationInstance && started.orchestrationInstance.executionId;
    emit("execution_id_present", Boolean(executionId));
    const suffix = out.implicit.parent.taskScheduledId.toString(16).padStart(4, "0");
    emit("implicit_id_matches", out.implicit.id === `${executionId}:${suffix}`);
    emit("named", [out.named.id, out.named.doubled, out.named.parent && out.named.parent.instanceId]);
    emit("failure", out.failure);
    const child = await client.getOrchestrationState(out.implicit.id, true);
    emit("child_state", [statusName(child), child.name]);
    const failed = await client.getOrchestrationState("parent-1-failing", true);
    emit("failed_child", [statusName(failed), failed.failureDetails ? failed.failureDetails.message : null]);
  },
);
