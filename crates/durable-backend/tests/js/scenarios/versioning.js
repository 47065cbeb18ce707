// Worker versioning: a worker that rejects another version abandons the work item (AbandonTaskOrchestrator-
// WorkItem) so another worker can take it, and one set to fail a mismatch completes the instance as FAILED
// with a bare completion action the SDK builds itself.
"use strict";
const { sdk, emit, statusName, parse, newWorker, run } = require("../prelude");

const strict = (version, failureStrategy) => ({
  versioning: { version, matchStrategy: sdk.VersionMatchStrategy.Strict, failureStrategy },
});

function whoRan(label) {
  return async function* (ctx) {
    return `${label} ran ${ctx.version}`;
  };
}

run(
  (worker) => {
    worker.addNamedOrchestrator("versioned", whoRan("worker 1.0"));
  },
  async (client) => {
    const v2 = newWorker(strict("2.0", sdk.VersionFailureStrategy.Reject));
    v2.addNamedOrchestrator("versioned", whoRan("worker 2.0"));
    await v2.start();
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) {
        ids.push(await client.scheduleNewOrchestration("versioned", null, { version: "1.0" }));
        ids.push(await client.scheduleNewOrchestration("versioned", null, { version: "2.0" }));
      }
      const outputs = [];
      for (const id of ids) {
        const done = await client.waitForOrchestrationCompletion(id, true, 60);
        outputs.push([statusName(done), parse(done.serializedOutput)]);
      }
      emit("rejected_then_taken", outputs);
    } finally {
      await v2.stop().catch((e) => console.error("2.0 worker stop:", e));
    }

    // Only the 1.0 worker is left, and a 3.0 instance arrives: with the Fail strategy it fails at once.
    const failing = newWorker(strict("1.0", sdk.VersionFailureStrategy.Fail));
    failing.addNamedOrchestrator("versioned", whoRan("failing 1.0"));
    await failing.start();
    try {
      const id = await client.scheduleNewOrchestration("versioned", null, { version: "3.0" });
      const done = await client.waitForOrchestrationCompletion(id, true, 60);
      emit("mismatch_failed", [
        statusName(done),
        done.failureDetails ? done.failureDetails.errorType : null,
        done.failureDetails ? done.failureDetails.message.includes("3.0") : null,
      ]);
    } finally {
      await failing.stop().catch((e) => console.error("failing worker stop:", e));
    }
  },
  strict("1.0", sdk.VersionFailureStrategy.Reject),
);
