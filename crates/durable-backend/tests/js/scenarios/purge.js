// Purge: by id (a finished instance goes, a running one is refused), recursively with its children, and by a
// status filter.
"use strict";
const { sdk, emit, statusName, grpcCode, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedOrchestrator("quick", async function* (_ctx, n) {
      return n;
    });
    worker.addNamedOrchestrator("waits", async function* (ctx) {
      return yield ctx.waitForExternalEvent("never");
    });
    worker.addNamedOrchestrator("with_child", async function* (ctx) {
      return yield ctx.callSubOrchestrator("quick", 1, { instanceId: `${ctx.instanceId}-child` });
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("quick", 1, { instanceId: "purge-1" });
    await client.waitForOrchestrationCompletion(id, false, 60);
    const purged = await client.purgeOrchestration(id);
    emit("purge_one", [purged.deletedInstanceCount, (await client.getOrchestrationState(id)) === undefined]);
    emit("history_after_purge", (await client.getOrchestrationHistory(id)).length);
    const again = await client.purgeOrchestration(id);
    emit("purge_missing", again.deletedInstanceCount);

    const running = await client.scheduleNewOrchestration("waits", null, { instanceId: "purge-running" });
    await client.waitForOrchestrationStart(running, false, 30);
    try {
      const r = await client.purgeOrchestration(running);
      emit("purge_running", ["deleted", r.deletedInstanceCount]);
    } catch (e) {
      emit("purge_running", grpcCode(e));
    }
    emit("running_kept", statusName(await client.getOrchestrationState(running)));

    const parent = await client.scheduleNewOrchestration("with_child", null, { instanceId: "purge-parent" });
    await client.waitForOrchestrationCompletion(parent, false, 60);
    const recursive = await client.purgeOrchestration(parent, { recursive: true });
    emit("purge_recursive", [
      recursive.deletedInstanceCount,
      (await client.getOrchestrationState("purge-parent-child")) === undefined,
    ]);

    for (let i = 0; i < 5; i++) {
      const f = await client.scheduleNewOrchestration("quick", i, { instanceId: `purge-f${i}` });
      await client.waitForOrchestrationCompletion(f, false, 60);
    }
    const criteria = new sdk.PurgeInstanceCriteria();
    criteria.setCreatedTimeFrom(new Date(Date.now() - 3600 * 1000));
    criteria.setRuntimeStatusList([sdk.OrchestrationStatus.COMPLETED]);
    criteria.setTimeout(30000);
    const byFilter = await client.purgeOrchestration(criteria);
    emit("purge_filter", byFilter.deletedInstanceCount);
    const left = [];
    for await (const state of client.getAllInstances({ instanceIdPrefix: "purge-" })) {
      left.push([state.instanceId, statusName(state)]);
    }
    emit("left_after_filter", left);
  },
);
