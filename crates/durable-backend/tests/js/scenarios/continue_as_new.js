// Continue-as-new: a counter restarts itself until it reaches its target; each generation has a new execution
// (so sub-orchestration ids derived from it never collide) and only the last generation's history remains.
"use strict";
const { emit, statusName, parse, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedOrchestrator("child", async function* (ctx, n) {
      return `${ctx.instanceId}#${n}`;
    });
    worker.addNamedOrchestrator("counter", async function* (ctx, state) {
      const childId = yield ctx.callSubOrchestrator("child", state.n);
      const seen = [...state.seen, childId];
      if (state.n < 3) {
        ctx.continueAsNew({ n: state.n + 1, seen }, false);
        return;
      }
      return { n: state.n, seen };
    });
    worker.addNamedOrchestrator("keeps_events", async function* (ctx, round) {
      const value = yield ctx.waitForExternalEvent("item");
      if (round < 2) {
        ctx.continueAsNew(round + 1, true);
        return;
      }
      return [round, value];
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("counter", { n: 0, seen: [] }, { instanceId: "can-1" });
    const done = await client.waitForOrchestrationCompletion(id, true, 90);
    const out = parse(done.serializedOutput);
    emit("status", statusName(done));
    emit("n", out.n);
    emit("children", out.seen.length);
    emit("children_distinct", new Set(out.seen).size);
    emit("input", parse(done.serializedInput).n);
    const history = await client.getOrchestrationHistory(id);
    const starts = history.filter((e) => e.type === "ExecutionStarted");
    emit("history_generations", [starts.length, parse(starts[0].input).n]);

    // Events raised in one burst: the ones the current generation does not consume are carried over.
    const keeper = await client.scheduleNewOrchestration("keeps_events", 0, { instanceId: "can-keep" });
    await client.waitForOrchestrationStart(keeper, false, 30);
    for (const v of ["a", "b", "c"]) {
      await client.raiseOrchestrationEvent(keeper, "item", v);
    }
    const kept = await client.waitForOrchestrationCompletion(keeper, true, 60);
    emit("carried_events", [statusName(kept), parse(kept.serializedOutput)]);
  },
);
