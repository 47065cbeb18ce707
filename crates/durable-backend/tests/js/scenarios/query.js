// Queries: instances by prefix and status, page by page; instance ids by completion; the recorded history.
"use strict";
const { sdk, emit, statusName, parse, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedActivity("inc", (_ctx, n) => n + 1);
    worker.addNamedOrchestrator("step", async function* (ctx, n) {
      return yield ctx.callActivity("inc", n);
    });
    worker.addNamedOrchestrator("waits", async function* (ctx) {
      return yield ctx.waitForExternalEvent("never");
    });
  },
  async (client) => {
    for (let i = 0; i < 7; i++) {
      const id = await client.scheduleNewOrchestration("step", i, { instanceId: `q-0${i}` });
      await client.waitForOrchestrationCompletion(id, false, 60);
    }
    const other = await client.scheduleNewOrchestration("waits", null, { instanceId: "other-running" });
    await client.waitForOrchestrationStart(other, false, 30);

    const pages = [];
    for await (const page of client.getAllInstances({ instanceIdPrefix: "q-", pageSize: 3 }).asPages()) {
      pages.push(page.values.map((s) => s.instanceId));
      if (pages.length > 10) break;
    }
    emit("query_pages", pages);

    const completed = [];
    for await (const state of client.getAllInstances({
      statuses: [sdk.OrchestrationStatus.COMPLETED],
      fetchInputsAndOutputs: true,
    })) {
      completed.push([state.instanceId, parse(state.serializedOutput)]);
    }
    emit("query_completed", completed);

    const running = [];
    for await (const state of client.getAllInstances({ statuses: [sdk.OrchestrationStatus.RUNNING] })) {
      running.push([state.instanceId, statusName(state), state.name]);
    }
    emit("query_running", running);

    const none = [];
    for await (const state of client.getAllInstances({ createdTo: new Date(Date.now() - 3600 * 1000) })) {
      none.push(state.instanceId);
    }
    emit("query_created_long_ago", none);

    const idPages = [];
    let key;
    for (let guard = 0; guard < 10; guard++) {
      const page = await client.listInstanceIds({
        runtimeStatus: [sdk.OrchestrationStatus.COMPLETED],
        pageSize: 4,
        lastInstanceKey: key,
      });
      if (page.values.length > 0) idPages.push([...page.values]);
      if (!page.hasMoreResults || page.values.length === 0) break;
      key = page.continuationToken;
    }
    emit("list_ids", idPages.flat().sort());
    emit("list_ids_pages", idPages.length);

    const hour = 3600 * 1000;
    const windowed = async (from, to) =>
      (await client.listInstanceIds({ completedTimeFrom: from, completedTimeTo: to, pageSize: 100 })).values.length;
    emit("list_completed_windows", [
      await windowed(new Date(Date.now() - hour), new Date(Date.now() + hour)),
      await windowed(new Date(Date.now() + hour), undefined),
      await windowed(undefined, new Date(Date.now() - hour)),
    ]);

    const history = await client.getOrchestrationHistory("q-03");
    emit("history", history.map((e) => e.type));
    const started = history.find((e) => e.type === "ExecutionStarted");
    emit("history_started", [started.name, parse(started.input)]);
    const completedEvent = history.find((e) => e.type === "TaskCompleted");
    emit("history_task_result", parse(completedEvent.result));
    emit("history_missing", (await client.getOrchestrationHistory("no-such-instance")).length);
  },
);
