// The backend restarts (same SQLite file, same port) while instances wait on an event, a timer and a delayed
// start. The JS worker reconnects on its own; everything the backend had acknowledged carries on.
"use strict";
const { emit, pause, statusName, parse, waitUntil, grpcCode, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedActivity("step", (_ctx, input) => `${input} done`);
    worker.addNamedOrchestrator("across_restart", async function* (ctx) {
      const before = yield ctx.callActivity("step", "before");
      ctx.setCustomStatus("waiting");
      const event = yield ctx.waitForExternalEvent("go");
      const after = yield ctx.callActivity("step", event);
      return [before, after];
    });
    worker.addNamedOrchestrator("sleeps_across", async function* (ctx) {
      yield ctx.createTimer(3);
      return "woke";
    });
    worker.addNamedOrchestrator("starts_later", async function* () {
      return "started";
    });
    worker.addNamedOrchestrator("never_ends", async function* (ctx) {
      return yield ctx.waitForExternalEvent("never");
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("across_restart", null, { instanceId: "r-event" });
    await waitUntil(async () => {
      const state = await client.getOrchestrationState(id, true);
      return state && parse(state.serializedCustomStatus) === "waiting";
    }, "the first activity");
    await client.scheduleNewOrchestration("sleeps_across", null, { instanceId: "r-timer" });
    await client.waitForOrchestrationStart("r-timer", false, 30);
    await client.scheduleNewOrchestration("starts_later", null, {
      instanceId: "r-later",
      startAt: new Date(Date.now() + 3000),
    });

    // A wait with no gRPC deadline is open while the backend stops: the stop must not hang on it, and the
    // waiter must hear about it rather than wait forever.
    await client.scheduleNewOrchestration("never_ends", null, { instanceId: "r-never" });
    await client.waitForOrchestrationStart("r-never", false, 30);
    const openWait = client.waitForOrchestrationCompletion("r-never", false, 150).then(
      (state) => `returned ${statusName(state)}`,
      (e) => (e && e.name === "TimeoutError" ? "client timeout" : grpcCode(e)),
    );

    await pause("restart");
    emit("open_wait", await openWait);

    // The client's channel reconnects on its next call; a call that races the reconnection may be refused
    // as UNAVAILABLE, which a caller retries.
    let unavailable = 0;
    await waitUntil(async () => {
      try {
        await client.raiseOrchestrationEvent(id, "go", "after");
        return true;
      } catch (e) {
        if (grpcCode(e) !== "UNAVAILABLE") throw e;
        unavailable += 1;
        return false;
      }
    }, "the client to reach the restarted backend");
    console.error(`raise after restart: ${unavailable} UNAVAILABLE answers first`);
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    emit("event", [statusName(done), parse(done.serializedOutput)]);
    const timer = await client.waitForOrchestrationCompletion("r-timer", true, 60);
    emit("timer", [statusName(timer), parse(timer.serializedOutput)]);
    const later = await client.waitForOrchestrationCompletion("r-later", true, 60);
    emit("later", [statusName(later), parse(later.serializedOutput)]);
  },
);
