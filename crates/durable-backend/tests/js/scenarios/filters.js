// Work-item filters: two workers on one hub, each asking only for what it registered ("auto" filters). Every
// orchestration fans out to activities only the other worker has, so any item handed to the wrong worker
// fails its orchestration.
"use strict";
const { sdk, emit, statusName, parse, newWorker, run } = require("../prelude");

const FAN = 10;

function fanOut(activity) {
  return async function* (ctx) {
    const tasks = [];
    for (let i = 0; i < FAN; i++) {
      tasks.push(ctx.callActivity(activity, i));
    }
    return yield sdk.whenAll(tasks);
  };
}

run(
  (worker) => {
    worker.addNamedOrchestrator("on_a", fanOut("act_b"));
    worker.addNamedActivity("act_a", () => "a");
  },
  async (client) => {
    const other = newWorker({ workItemFilters: "auto" });
    other.addNamedOrchestrator("on_b", fanOut("act_a"));
    other.addNamedActivity("act_b", () => "b");
    await other.start();
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) {
        ids.push(await client.scheduleNewOrchestration("on_a"));
        ids.push(await client.scheduleNewOrchestration("on_b"));
      }
      const results = [];
      for (const id of ids) {
        const done = await client.waitForOrchestrationCompletion(id, true, 90);
        results.push([done.name, statusName(done), parse(done.serializedOutput).join("")]);
      }
      emit("results", results);
    } finally {
      await other.stop().catch((e) => console.error("second worker stop:", e));
    }
  },
  { workItemFilters: "auto" },
);
