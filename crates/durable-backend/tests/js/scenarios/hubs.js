// Task hubs: a second worker and client on another hub of the same backend. Each hub's work goes only to its
// own worker, and instances of one hub are invisible from the other.
"use strict";
const { emit, statusName, parse, newClient, newWorker, run } = require("../prelude");

const OTHER = "other-hub";

run(
  (worker) => {
    worker.addNamedOrchestrator("whoami", async function* () {
      return "main";
    });
  },
  async (client) => {
    const otherWorker = newWorker({}, OTHER);
    otherWorker.addNamedOrchestrator("whoami", async function* () {
      return "other";
    });
    await otherWorker.start();
    const otherClient = newClient(OTHER);
    try {
      const answers = [];
      for (let i = 0; i < 3; i++) {
        const mine = await client.scheduleNewOrchestration("whoami", null, { instanceId: `same-${i}` });
        // The same instance id in the other hub is a different instance.
        const theirs = await otherClient.scheduleNewOrchestration("whoami", null, { instanceId: `same-${i}` });
        const a = await client.waitForOrchestrationCompletion(mine, true, 60);
        const b = await otherClient.waitForOrchestrationCompletion(theirs, true, 60);
        answers.push([parse(a.serializedOutput), parse(b.serializedOutput)]);
      }
      emit("answers", answers);

      const only = await otherClient.scheduleNewOrchestration("whoami", null, { instanceId: "other-only" });
      await otherClient.waitForOrchestrationCompletion(only, false, 60);
      emit("cross_lookup", [
        (await client.getOrchestrationState("other-only")) === undefined,
        statusName(await otherClient.getOrchestrationState("other-only")),
      ]);
      const listed = [];
      for await (const state of client.getAllInstances({})) {
        listed.push(state.instanceId);
      }
      emit("main_hub_instances", listed.sort());
    } finally {
      await otherWorker.stop().catch((e) => console.error("second worker stop:", e));
      await otherClient.stop().catch((e) => console.error("second client stop:", e));
    }
  },
);
