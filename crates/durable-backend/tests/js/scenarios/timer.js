// Durable timers: a one-second timer fires no earlier than asked, and a timer used as an event timeout wins
// against an event that never comes.
"use strict";
const { sdk, emit, statusName, parse, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedOrchestrator("sleeper", async function* (ctx, seconds) {
      const before = ctx.currentUtcDateTime.getTime();
      const fireAt = new Date(before + seconds * 1000);
      yield ctx.createTimer(fireAt);
      return { before, fireAt: fireAt.getTime(), after: ctx.currentUtcDateTime.getTime() };
    });
    worker.addNamedOrchestrator("approval_or_timeout", async function* (ctx) {
      const approval = ctx.waitForExternalEvent("approval");
      const timeout = ctx.createTimer(1);
      const winner = yield sdk.whenAny([approval, timeout]);
      return winner === approval ? "approved" : "timed out";
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("sleeper", 1);
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    const out = parse(done.serializedOutput);
    emit("timer_status", statusName(done));
    // The replayed clock after the timer is the dispatch time of the turn the timer fired in.
    emit("fired_after_due", out.after >= out.fireAt);
    // By the backend's record: the turn that delivered the timer was dispatched no earlier than it was due.
    const history = await client.getOrchestrationHistory(id);
    let turnStarted = null;
    const delivered = [];
    for (const event of history) {
      if (event.type === "OrchestratorStarted") turnStarted = event.timestamp.getTime();
      if (event.type === "TimerFired") delivered.push(turnStarted !== null && turnStarted >= event.fireAt.getTime());
    }
    emit("history_delivered_after_due", delivered);
    emit("updated_after_due", done.lastUpdatedAt.getTime() >= out.fireAt);

    const race = await client.scheduleNewOrchestration("approval_or_timeout");
    const raced = await client.waitForOrchestrationCompletion(race, true, 60);
    emit("timeout", [statusName(raced), parse(raced.serializedOutput)]);
  },
);
