// Entities: signals from the client, calls and signals from an orchestration, an operation that throws, a
// critical section (lockedBy seen from the client), delete and re-create, a scheduled signal, queries, cleanup.
"use strict";
const { sdk, emit, statusName, parse, waitUntil, run } = require("../prelude");

class Counter extends sdk.TaskEntity {
  add(amount) {
    this.state.count += amount;
    return this.state.count;
  }
  get() {
    return this.state.count;
  }
  fail() {
    throw new Error(`refused at ${this.state.count}`);
  }
  initializeState() {
    return { count: 0 };
  }
}

// Forwards to a counter from inside an entity, so entity-to-entity signals are covered too.
class Relay extends sdk.TaskEntity {
  forward(input) {
    this.context.signalEntity(new sdk.EntityInstanceId("counter", input.key), "add", input.amount);
    this.state.forwarded += 1;
  }
  kickoff(input) {
    this.context.scheduleNewOrchestration("started_by_entity", input, { instanceId: "from-entity" });
  }
  initializeState() {
    return { forwarded: 0 };
  }
}

const counter = (key) => new sdk.EntityInstanceId("counter", key);

// The SDK's metadata throws on `state` when the backend sent none (an entity that exists only as a lock holder).
function countIn(meta) {
  return meta && meta.includesState && meta.state ? meta.state.count : null;
}

async function countOf(client, key) {
  return countIn(await client.getEntity(counter(key)));
}

run(
  (worker) => {
    worker.addNamedEntity("counter", () => new Counter());
    worker.addNamedEntity("relay", () => new Relay());
    worker.addNamedOrchestrator("started_by_entity", async function* (_ctx, input) {
      return `entity said ${input}`;
    });
    worker.addNamedOrchestrator("uses_counter", async function* (ctx) {
      const id = counter("orch");
      const first = yield ctx.entities.callEntity(id, "add", 5);
      ctx.entities.signalEntity(id, "add", 10);
      const after = yield ctx.entities.callEntity(id, "get");
      let failure = null;
      try {
        yield ctx.entities.callEntity(id, "fail");
      } catch (e) {
        failure = e.message.includes(`refused at ${after}`);
      }
      return { first, after, failure };
    });
    worker.addNamedOrchestrator("critical_section", async function* (ctx) {
      const a = counter("lock-a");
      const b = counter("lock-b");
      const lock = yield ctx.entities.lockEntities(a, b);
      const inSection = ctx.entities.isInCriticalSection().inSection;
      yield ctx.entities.callEntity(a, "add", 1);
      // Hold the locks until the client has looked at them.
      yield ctx.waitForExternalEvent("release");
      // A signal sent to b from outside while the lock is held has to wait, so this call sees only its own 2.
      const b2 = yield ctx.entities.callEntity(b, "add", 2);
      lock.release();
      return { inSection, b: b2 };
    });
  },
  async (client) => {
    for (let i = 0; i < 10; i++) {
      await client.signalEntity(counter("signals"), "add", 1);
    }
    emit("signals", await waitUntil(async () => (await countOf(client, "signals")) === 10 && 10, "ten signals"));
    emit("missing", (await client.getEntity(counter("never-signalled"))) === undefined);

    const orch = await client.scheduleNewOrchestration("uses_counter");
    const orchDone = await client.waitForOrchestrationCompletion(orch, true, 60);
    emit("orchestration", [statusName(orchDone), parse(orchDone.serializedOutput)]);
    emit("orchestration_state", await countOf(client, "orch"));

    await client.signalEntity(new sdk.EntityInstanceId("relay", "r1"), "forward", { key: "relayed", amount: 7 });
    emit("relayed", await waitUntil(async () => await countOf(client, "relayed"), "the relayed signal"));

    await client.signalEntity(new sdk.EntityInstanceId("relay", "r1"), "kickoff", "hi");
    // The start happens when the entity runs, so the instance appears some time after the signal.
    await waitUntil(async () => await client.getOrchestrationState("from-entity"), "the entity's orchestration");
    const started = await client.waitForOrchestrationCompletion("from-entity", true, 60);
    emit("started_by_entity", [statusName(started), parse(started.serializedOutput)]);

    const cs = await client.scheduleNewOrchestration("critical_section", null, { instanceId: "cs-1" });
    const lockedBy = await waitUntil(async () => {
      const meta = await client.getEntity(counter("lock-a"));
      return countIn(meta) === 1 ? meta.lockedBy ?? "none" : null;
    }, "the call inside the critical section");
    emit("locked_by", lockedBy);
    // A signal from outside waits until the lock is released.
    await client.signalEntity(counter("lock-b"), "add", 100);
    await client.raiseOrchestrationEvent(cs, "release", null);
    const csDone = await client.waitForOrchestrationCompletion(cs, true, 60);
    emit("critical_section", [statusName(csDone), parse(csDone.serializedOutput)]);
    emit("lock_b", await waitUntil(async () => (await countOf(client, "lock-b")) === 102 && 102, "lock-b = 102"));
    const unlocked = await client.getEntity(counter("lock-a"));
    emit("unlocked", unlocked.lockedBy ?? null);

    await client.signalEntity(counter("gone"), "add", 3);
    await waitUntil(async () => (await countOf(client, "gone")) === 3, "gone = 3");
    await client.signalEntity(counter("gone"), "delete");
    emit("deleted", await waitUntil(async () => {
      const meta = await client.getEntity(counter("gone"));
      return meta === undefined || !meta.includesState;
    }, "the deleted state"));
    await client.signalEntity(counter("gone"), "add", 7);
    emit("recreated", await waitUntil(async () => await countOf(client, "gone"), "the re-created entity"));

    // Far enough ahead that the read right after the signal always lands before it is due.
    const due = new Date(Date.now() + 2500);
    await client.signalEntity(counter("later"), "add", 1, { signalTime: due });
    emit("early", await countOf(client, "later"));
    await waitUntil(async () => (await countOf(client, "later")) === 1, "the scheduled signal", 30000);
    emit("on_time", Date.now() >= due.getTime());

    const names = [];
    for await (const meta of client.getEntities({ instanceIdStartsWith: "@counter@lock", includeState: true })) {
      names.push([meta.id.toString(), countIn(meta)]);
    }
    emit("query", names);
    const pages = [];
    for await (const page of client.getEntities({ instanceIdStartsWith: "@counter@", pageSize: 2 }).asPages()) {
      pages.push(page.values.length);
      if (pages.length > 20) break;
    }
    emit("query_pages", pages);

    // "empty" is only ever told to delete itself. While the signal waits it is a transient entity; once it is
    // processed nothing of the entity remains (not even for transient queries), so cleaning has nothing to do.
    await client.signalEntity(counter("empty"), "delete");
    await waitUntil(async () => {
      for await (const _meta of client.getEntities({ instanceIdStartsWith: "@counter@empty", includeTransient: true })) {
        return false;
      }
      return true;
    }, "the processed delete of the empty entity");
    const cleaned = await client.cleanEntityStorage({ removeEmptyEntities: true, releaseOrphanedLocks: true }, true);
    emit("cleaned", [cleaned.emptyEntitiesRemoved, cleaned.orphanedLocksReleased]);
    const after = [];
    for await (const meta of client.getEntities({ includeTransient: true, includeState: false })) {
      after.push(meta.id.toString());
    }
    emit("after_clean", after.sort());
  },
);
