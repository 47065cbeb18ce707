// Fan-out/fan-in: twenty activities scheduled in one turn, joined with whenAll; whenAny picks the first result.
"use strict";
const { sdk, emit, statusName, parse, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedActivity("square", (_ctx, n) => n * n);
    worker.addNamedOrchestrator("fan_out", async function* (ctx, count) {
      const tasks = [];
      for (let i = 1; i <= count; i++) {
        tasks.push(ctx.callActivity("square", i));
      }
      const squares = yield sdk.whenAll(tasks);
      return { count: squares.length, sum: squares.reduce((a, b) => a + b, 0) };
    });
    worker.addNamedOrchestrator("first_of", async function* (ctx) {
      const winner = yield sdk.whenAny([ctx.callActivity("square", 7), ctx.createTimer(300)]);
      return winner.getResult();
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("fan_out", 20);
    const done = await client.waitForOrchestrationCompletion(id, true, 90);
    emit("fan_out", [statusName(done), parse(done.serializedOutput)]);

    const first = await client.scheduleNewOrchestration("first_of");
    const firstDone = await client.waitForOrchestrationCompletion(first, true, 60);
    emit("when_any", [statusName(firstDone), parse(firstDone.serializedOutput)]);
  },
);
