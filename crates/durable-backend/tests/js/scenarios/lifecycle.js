// Instance lifecycle beyond start and finish: restart (same id, new id, refused while running), rewind of a
// failed instance, the version given at start, and the backend's refusals of bad ids and oversized payloads.
"use strict";
const { emit, statusName, parse, grpcCode, run } = require("../prelude");

let shakyCalls = 0;

run(
  (worker) => {
    worker.addNamedOrchestrator("echo", async function* (ctx, input) {
      return { input, id: ctx.instanceId, version: ctx.version };
    });
    worker.addNamedOrchestrator("waits", async function* (ctx) {
      return yield ctx.waitForExternalEvent("never");
    });
    worker.addNamedActivity("shaky", () => {
      shakyCalls += 1;
      if (shakyCalls === 1) {
        throw new Error("first call fails");
      }
      return `ok on call ${shakyCalls}`;
    });
    worker.addNamedOrchestrator("rewindable", async function* (ctx) {
      return yield ctx.callActivity("shaky");
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("echo", "r1", { instanceId: "life-1", version: "2.0" });
    const first = await client.waitForOrchestrationCompletion(id, true, 60);
    emit("versioned", [statusName(first), parse(first.serializedOutput)]);

    const same = await client.restartOrchestration(id, false);
    const again = await client.waitForOrchestrationCompletion(same, true, 60);
    emit("restart_same", [same, statusName(again), parse(again.serializedOutput).input]);
    const fresh = await client.restartOrchestration(id, true);
    const freshDone = await client.waitForOrchestrationCompletion(fresh, true, 60);
    emit("restart_new", [fresh !== id, statusName(freshDone), parse(freshDone.serializedOutput).input]);

    const running = await client.scheduleNewOrchestration("waits", null, { instanceId: "life-running" });
    await client.waitForOrchestrationStart(running, false, 30);
    try {
      await client.restartOrchestration(running, false);
      emit("restart_running", "restarted");
    } catch (e) {
      emit("restart_running", grpcCode(e));
    }

    const rewindable = await client.scheduleNewOrchestration("rewindable", null, { instanceId: "life-rewind" });
    const failed = await client.waitForOrchestrationCompletion(rewindable, true, 60);
    emit("before_rewind", statusName(failed));
    await client.rewindInstance(rewindable, "try again");
    const rewound = await client.waitForOrchestrationCompletion(rewindable, true, 60);
    emit("after_rewind", [statusName(rewound), parse(rewound.serializedOutput)]);
    try {
      await client.rewindInstance(rewindable, "nothing to rewind");
      emit("rewind_completed", "rewound");
    } catch (e) {
      emit("rewind_completed", grpcCode(e));
    }

    try {
      await client.scheduleNewOrchestration("echo", null, { instanceId: "@not@allowed" });
      emit("entity_like_id", "accepted");
    } catch (e) {
      emit("entity_like_id", grpcCode(e));
    }
    try {
      await client.scheduleNewOrchestration("echo", "x".repeat(1100 * 1024), { instanceId: "life-too-big" });
      emit("too_big", "accepted");
    } catch (e) {
      emit("too_big", grpcCode(e));
    }
    emit("too_big_created", (await client.getOrchestrationState("life-too-big")) !== undefined);
  },
);
