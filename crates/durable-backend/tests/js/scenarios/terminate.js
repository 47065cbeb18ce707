// Terminate: a waiting instance ends TERMINATED with the given output; terminating again changes nothing; a
// recursive terminate reaches a running child.
"use strict";
const { sdk, emit, statusName, parse, waitUntil, grpcCode, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedOrchestrator("forever", async function* (ctx) {
      return yield ctx.waitForExternalEvent("never");
    });
    worker.addNamedOrchestrator("parent_of_forever", async function* (ctx) {
      return yield ctx.callSubOrchestrator("forever", null, { instanceId: `${ctx.instanceId}-child` });
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("forever", null, { instanceId: "term-1" });
    await client.waitForOrchestrationStart(id, false, 30);
    await client.terminateOrchestration(id, "stop");
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    emit("terminated", [statusName(done), parse(done.serializedOutput)]);

    await client.terminateOrchestration(id, "again");
    const after = await client.getOrchestrationState(id, true);
    emit("terminate_again", [statusName(after), parse(after.serializedOutput)]);

    // Terminated before any worker ran it: scheduled for much later, so it is still pending.
    const pending = await client.scheduleNewOrchestration("forever", null, {
      instanceId: "term-pending",
      startAt: new Date(Date.now() + 3600 * 1000),
    });
    emit("pending_before", statusName(await client.getOrchestrationState(pending)));
    await client.terminateOrchestration(pending, "never ran");
    const pendingDone = await client.waitForOrchestrationCompletion(pending, true, 30);
    emit("pending_terminated", [statusName(pendingDone), parse(pendingDone.serializedOutput)]);

    try {
      await client.terminateOrchestration("no-such-instance", "x");
      emit("terminate_missing", "accepted");
    } catch (e) {
      emit("terminate_missing", grpcCode(e));
    }

    const parent = await client.scheduleNewOrchestration("parent_of_forever", null, { instanceId: "term-parent" });
    await waitUntil(
      async () => statusName(await client.getOrchestrationState("term-parent-child")) === "RUNNING",
      "the child to run",
    );
    await client.terminateOrchestration(parent, sdk.terminateOptions({ output: "all of it", recursive: true }));
    const parentDone = await client.waitForOrchestrationCompletion(parent, true, 60);
    const childDone = await client.waitForOrchestrationCompletion("term-parent-child", true, 60);
    emit("recursive", [statusName(parentDone), statusName(childDone)]);
  },
);
