// Suspend and resume: a suspended instance holds back the events raised meanwhile and handles them on resume.
"use strict";
const { emit, statusName, parse, waitUntil, grpcCode, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedActivity("echo", (_ctx, value) => value);
    worker.addNamedOrchestrator("pausable", async function* (ctx) {
      const first = yield ctx.waitForExternalEvent("go");
      const echoed = yield ctx.callActivity("echo", first);
      const second = yield ctx.waitForExternalEvent("go");
      return [echoed, second];
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("pausable", null, { instanceId: "pause-1" });
    await client.waitForOrchestrationStart(id, false, 30);
    await client.suspendOrchestration(id);
    const suspended = await waitUntil(
      async () => statusName(await client.getOrchestrationState(id)) === "SUSPENDED",
      "SUSPENDED",
    );
    emit("suspended", suspended);

    await client.raiseOrchestrationEvent(id, "go", "one");
    // The held event must not move the instance; it is still suspended once the worker has seen the event.
    await waitUntil(async () => {
      const history = await client.getOrchestrationHistory(id);
      return history.some((e) => e.type === "EventRaised");
    }, "the raised event in the history");
    emit("held_while_suspended", statusName(await client.getOrchestrationState(id)));

    await client.resumeOrchestration(id);
    await waitUntil(
      async () => statusName(await client.getOrchestrationState(id)) === "RUNNING",
      "RUNNING after resume",
    );
    await client.raiseOrchestrationEvent(id, "go", "two");
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    emit("resumed", [statusName(done), parse(done.serializedOutput)]);

    const missing = [];
    for (const op of ["suspendOrchestration", "resumeOrchestration"]) {
      try {
        await client[op]("no-such-instance");
        missing.push("accepted");
      } catch (e) {
        missing.push(grpcCode(e));
      }
    }
    emit("missing", missing);

    const history = await client.getOrchestrationHistory(id);
    emit(
      "history_suspend_resume",
      history.filter((e) => e.type === "ExecutionSuspended" || e.type === "ExecutionResumed").map((e) => e.type),
    );
  },
);
