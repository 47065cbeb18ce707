// Activity chain: three activities in sequence, input and output round-trip, tags and metadata on the instance.
"use strict";
const { emit, statusName, parse, run } = require("../prelude");

run(
  (worker) => {
    worker.addNamedActivity("say_hello", (_ctx, city) => `Hello ${city}!`);
    worker.addNamedOrchestrator("hello_cities", async function* (ctx, cities) {
      const greetings = [];
      for (const city of cities) {
        greetings.push(yield ctx.callActivity("say_hello", city));
      }
      return greetings;
    });
  },
  async (client) => {
    const id = await client.scheduleNewOrchestration("hello_cities", ["Tokyo", "Seattle", "London"], {
      instanceId: "chain-1",
      tags: { team: "blue" },
    });
    emit("id", id);
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    emit("status", statusName(done));
    emit("output", parse(done.serializedOutput));
    emit("input", parse(done.serializedInput));
    emit("name", done.name);
    emit("created_before_updated", done.createdAt.getTime() <= done.lastUpdatedAt.getTime());

    const state = await client.getOrchestrationState(id, true);
    emit("tags", state.tags ?? null);
    const bare = await client.getOrchestrationState(id, false);
    emit("without_payloads", [statusName(bare), bare.serializedInput ?? null, bare.serializedOutput ?? null]);
    emit("missing", (await client.getOrchestrationState("no-such-instance")) === undefined);

    // No instance id: the SDK makes one up; the backend must take it as given.
    const generated = await client.scheduleNewOrchestration("hello_cities", ["Oslo"]);
    const second = await client.waitForOrchestrationCompletion(generated, true, 60);
    emit("generated", [generated.length > 0, statusName(second), parse(second.serializedOutput)]);
  },
);
