// What the scheduler does in details its SDK users can see: a signal an orchestration schedules waits for its
// time, entities left without state vanish at once (so cleaning finds nothing), the recorded history has no
// OrchestratorCompleted, and activities scheduled without a version run as their orchestration's version under
// work-item filters. (Reuse policies are not here: this SDK version has no way to send one.) The version checks
// use hubs of their own, so their filtered workers never meet the main worker's work.
"use strict";
const { sdk, emit, statusName, parse, waitUntil, newClient, newWorker, run } = require("../prelude");

const recorder = (key) => new sdk.EntityInstanceId("recorder", key);

// Records when an operation ran (the entity's own clock) or a value; "delete" is the SDK's built-in operation.
class Recorder extends sdk.TaskEntity {
  stamp() {
    this.state.at = new Date().toISOString();
  }
  set(value) {
    this.state.value = value;
  }
  initializeState() {
    return {};
  }
}

function greet(_ctx, name) {
  return `Hello, ${name}!`;
}

async function* versioned(ctx, name) {
  const greeting = yield ctx.callActivity("greet", name);
  return [ctx.version, greeting];
}

async function stateOf(client, key) {
  const meta = await client.getEntity(recorder(key));
  return meta && meta.includesState && meta.state ? meta.state : null;
}

async function listed(client, prefix) {
  const keys = [];
  for await (const meta of client.getEntities({ instanceIdStartsWith: prefix, includeTransient: true })) {
    keys.push(meta.id.key);
  }
  return keys.sort();
}

// Runs `versioned` at `version` on a hub of its own, with a worker built from `options`.
async function versionedRun(hub, options, version, name) {
  const worker = newWorker(options, hub);
  worker.addNamedOrchestrator("versioned", versioned);
  worker.addNamedActivity("greet", greet);
  await worker.start();
  const client = newClient(hub);
  try {
    const id = await client.scheduleNewOrchestration("versioned", name, { version });
    const done = await client.waitForOrchestrationCompletion(id, true, 60);
    return [statusName(done), parse(done.serializedOutput)];
  } finally {
    await Promise.all([worker.stop(), client.stop()]);
  }
}

run(
  (worker) => {
    worker.addNamedEntity("recorder", () => new Recorder());
    worker.addNamedActivity("greet", greet);
    worker.addNamedOrchestrator("delayed_signal", async function* (ctx, key) {
      const at = new Date(ctx.currentUtcDateTime.getTime() + 3000);
      ctx.entities.signalEntity(recorder(key), "stamp", undefined, { signalTime: at });
      return at.toISOString();
    });
    worker.addNamedOrchestrator("lock_only", async function* (ctx, key) {
      const lock = yield ctx.entities.lockEntities(recorder(key));
      lock.release();
      return "unlocked";
    });
    worker.addNamedOrchestrator("child", async function* () {
      return "child done";
    });
    worker.addNamedOrchestrator("mixed", async function* (ctx) {
      const greeting = yield ctx.callActivity("greet", "World");
      yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 200));
      const child = yield ctx.callSubOrchestrator("child");
      return [greeting, child];
    });
  },
  async (client) => {
    const signaller = await client.scheduleNewOrchestration("delayed_signal", "later");
    const signalled = await client.waitForOrchestrationCompletion(signaller, true, 60);
    const due = new Date(parse(signalled.serializedOutput));
    emit("signal_before_due", await stateOf(client, "later"));
    const stamped = await waitUntil(async () => await stateOf(client, "later"), "the scheduled signal");
    emit("signal_ran_after_due", new Date(stamped.at) >= due);

    await client.signalEntity(recorder("kept"), "set", "v");
    await client.signalEntity(recorder("deleted"), "set", "v");
    await waitUntil(async () => await stateOf(client, "deleted"), "deleted has state");
    await client.signalEntity(recorder("deleted"), "delete");
    await waitUntil(async () => (await listed(client, "@recorder@deleted")).length === 0, "deleted to vanish");
    emit("deleted_get", (await client.getEntity(recorder("deleted"))) === undefined);
    await client.signalEntity(recorder("never"), "delete");
    await waitUntil(async () => (await listed(client, "@recorder@never")).length === 0, "never to vanish");
    const locker = await client.scheduleNewOrchestration("lock_only", "lock-only");
    const locked = await client.waitForOrchestrationCompletion(locker, true, 60);
    emit("lock_only", parse(locked.serializedOutput));
    await waitUntil(async () => (await listed(client, "@recorder@lock")).length === 0, "lock-only to vanish");
    await waitUntil(async () => await stateOf(client, "kept"), "kept has state");
    emit("entities_left", await listed(client, "@recorder@"));
    const cleaned = await client.cleanEntityStorage({ removeEmptyEntities: true, releaseOrphanedLocks: true }, true);
    emit("cleaned", [cleaned.emptyEntitiesRemoved, cleaned.orphanedLocksReleased]);

    const mixed = await client.scheduleNewOrchestration("mixed");
    const mixedDone = await client.waitForOrchestrationCompletion(mixed, true, 60);
    emit("mixed", parse(mixedDone.serializedOutput));
    emit("history", (await client.getOrchestrationHistory(mixed)).map((e) => e.type));

    const explicit = {
      workItemFilters: {
        orchestrations: [{ name: "versioned", versions: ["3.0.0"] }],
        activities: [{ name: "greet", versions: ["3.0.0"] }],
      },
    };
    emit("explicit_filters", await versionedRun("js-versions", explicit, "3.0.0", "explicit"));
    const strict = {
      versioning: { version: "2.0", matchStrategy: sdk.VersionMatchStrategy.Strict },
      workItemFilters: "auto",
    };
    emit("strict_auto_filters", await versionedRun("js-strict", strict, "2.0", "strict"));
  },
);
