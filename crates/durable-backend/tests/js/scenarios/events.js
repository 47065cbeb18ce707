// External events raised by the client (before and after the orchestration waits for them), events between
// instances, and raising to an instance that does not exist.
"use strict";
const { emit, statusName, parse, waitUntil, grpcCode, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedOrchestrator("two_approvals", async function* (ctx) {
      const first = yield ctx.waitForExternalEvent("approval");
      ctx.setCustomStatus("waiting for the second");
      const second = yield ctx.waitForExternalEvent("Second");
      return [first, second];
    });
    worker.addNamedOrchestrator("early_bird", async function* (ctx) {
      return yield ctx.waitForExternalEvent("early");
    });
    worker.addNamedOrchestrator("sender", async function* (ctx, target) {
      ctx.sendEvent(target, "ping", { from: ctx.instanceId });
      return "sent";
    });
    worker.addNamedOrchestrator("receiver", async function* (ctx) {
      return yield ctx.waitForExternalEvent("ping");
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("two_approvals", null, { instanceId: "events-1" });
    await client.waitForOrchestrationStart(id, false, 30);
    await client.raiseOrchestrationEvent(id, "approval", { by: "alice" });
    const between = await waitUntil(async () => {
      const s = await client.getOrchestrationState(id, true);
      return s && s.serializedCustomStatus ? s : null;
    }, "the custom status set after the first event");
    emit("custom_status_running", [statusName(between), parse(between.serializedCustomStatus)]);
    // Event names are case-insensitive in the SDK; the backend must carry the name through unchanged.
    await client.raiseOrchestrationEvent(id, "second", "bob");
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    emit("approvals", [statusName(done), parse(done.serializedOutput)]);

    // Raised right after the start, before the orchestrator ever ran: the event must be kept for it.
    const early = await client.scheduleNewOrchestration("early_bird");
    await client.raiseOrchestrationEvent(early, "early", 42);
    const earlyDone = await client.waitForOrchestrationCompletion(early, true, 60);
    emit("early", [statusName(earlyDone), parse(earlyDone.serializedOutput)]);

    const receiver = await client.scheduleNewOrchestration("receiver", null, { instanceId: "receiver-1" });
    await client.waitForOrchestrationStart(receiver, false, 30);
    const sender = await client.scheduleNewOrchestration("sender", receiver, { instanceId: "sender-1" });
    const sent = await client.waitForOrchestrationCompletion(sender, true, 60);
    const received = await client.waitForOrchestrationCompletion(receiver, true, 60);
    emit("send_event", [parse(sent.serializedOutput), statusName(received), parse(received.serializedOutput)]);

    try {
      await client.raiseOrchestrationEvent("no-such-instance", "approval", 1);
      emit("raise_missing", "accepted");
    } catch (e) {
      emit("raise_missing", grpcCode(e));
    }
  },
);
