// The JS client's waits carry no gRPC deadline (its timeout is a client-side race that leaves the call open).
// The backend must hold such calls until the instance gets there, wake every waiter, and cope with waits the
// client gave up on without cancelling them.
"use strict";
const { emit, statusName, parse, waitUntil, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedOrchestrator("gate", async function* (ctx) {
      const key = yield ctx.waitForExternalEvent("open");
      return `opened with ${key}`;
    });
  },
  async (client) => {
    // Scheduled to start later: WaitForInstanceStart has to wait for the pending instance to run.
    const startAt = new Date(Date.now() + 1500);
    const id = await client.scheduleNewOrchestration("gate", null, { instanceId: "gate-1", startAt });
    const startState = await client.waitForOrchestrationStart(id, false, 60);
    emit("started", statusName(startState));

    const settled = [];
    const waiters = [0, 1, 2].map((i) =>
      client.waitForOrchestrationCompletion(id, true, 120).then((s) => {
        settled.push(i);
        return s;
      }),
    );
    // Each waiter is an open call now; none may come back while the orchestration still waits for its event.
    await waitUntil(async () => statusName(await client.getOrchestrationState(id)) === "RUNNING", "gate running");
    emit("pending_before_event", settled.length);

    await client.raiseOrchestrationEvent(id, "open", "k1");
    const results = await Promise.all(waiters);
    emit(
      "waiters",
      results.map((s) => [statusName(s), parse(s.serializedOutput)]),
    );

    // An already finished instance answers at once.
    const again = await client.waitForOrchestrationCompletion(id, false, 10);
    emit("finished_again", statusName(again));

    // A wait the client abandons: its one-second race fails, the call itself stays open on the wire.
    const stuck = await client.scheduleNewOrchestration("gate", null, { instanceId: "gate-2" });
    await client.waitForOrchestrationStart(stuck, false, 30);
    try {
      await client.waitForOrchestrationCompletion(stuck, true, 1);
      emit("abandoned", "returned");
    } catch (e) {
      emit("abandoned", e && e.name);
    }
    // The backend keeps serving this client afterwards, and the late completion is still reported.
    await client.raiseOrchestrationEvent(stuck, "open", "k2");
    const late = await client.waitForOrchestrationCompletion(stuck, true, 60);
    emit("after_abandoned", [statusName(late), parse(late.serializedOutput)]);

    // Waits on an instance that does not exist answer at once (the SDK then returns undefined) instead of
    // holding a deadline-less call until the client's own race gives up.
    const missing = [];
    for (const wait of ["waitForOrchestrationStart", "waitForOrchestrationCompletion"]) {
      try {
        const state = await client[wait]("no-such-instance", false, 20);
        missing.push(state === undefined ? "undefined" : statusName(state));
      } catch (e) {
        missing.push(e && e.name === "TimeoutError" ? "client timeout" : String(e));
      }
    }
    emit("missing_waits", missing);

    // A wait left open on an instance that never finishes; the Rust test checks that the backend still shuts
    // down promptly once this process is gone.
    const never = await client.scheduleNewOrchestration("gate", null, { instanceId: "gate-never" });
    await client.waitForOrchestrationStart(never, false, 30);
    client.waitForOrchestrationCompletion(never, true, 1).catch(() => {});
  },
);
