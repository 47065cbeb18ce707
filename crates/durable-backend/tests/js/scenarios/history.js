// A long history: 300 activities fanned out and then a timer, so the last turn replays more than 600 past
// events (the work item carries them inline, as this worker cannot stream history), and the client reads the
// whole history back through StreamInstanceHistory in several chunks.
"use strict";
const { sdk, emit, statusName, parse, run } = require("../prelude");

const COUNT = 300;

run(
  (worker) => {
    worker.addNamedActivity("echo", (_ctx, n) => ({ n, padding: "x".repeat(64) }));
    worker.addNamedOrchestrator("long_history", async function* (ctx) {
      const tasks = [];
      for (let i = 0; i < COUNT; i++) {
        tasks.push(ctx.callActivity("echo", i));
      }
      const results = yield sdk.whenAll(tasks);
      // One more turn after the fan-in, so a work item arrives with the whole long history as past events.
      yield ctx.createTimer(0.1);
      return { sum: results.reduce((total, r) => total + r.n, 0) };
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("long_history", null, { instanceId: "long-1" });
    const done = await client.waitForOrchestrationCompletion(id, true, 120);
    const out = parse(done.serializedOutput);
    emit("status", statusName(done));
    emit("sum", out.sum);

    const history = await client.getOrchestrationHistory(id);
    const counts = {};
    for (const event of history) {
      counts[event.type] = (counts[event.type] || 0) + 1;
    }
    emit("history_counts", counts);
    emit("history_ends", [history[0].type, history[history.length - 1].type]);
    // Actions' events carry their task ids; the chunks must come back in order, so those ids never go down.
    const scheduled = history.filter((e) => e.type === "TaskScheduled").map((e) => e.eventId);
    emit("event_ids_in_order", scheduled.every((id, i) => i === 0 || id > scheduled[i - 1]));
  },
);
