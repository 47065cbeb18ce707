// A worker process dies (SIGKILL) while it holds an activity work item. Its stream closes, so the backend hands
// the activity to the next worker at once (no lease expiry to wait for), and the orchestration completes.
"use strict";
const path = require("node:path");
const { spawn } = require("node:child_process");
const readline = require("node:readline");
const { emit, statusName, parse, newWorker, run } = require("../prelude");
const { registerCrashy } = require("../crash_worker");

function startChild() {
  const child = spawn(process.execPath, [path.join(__dirname, "..", "crash_worker.js")], {
    env: process.env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return { child, lines };
}

async function nextLine(lines, expected) {
  const { value, done } = await lines.next();
  if (done || value !== expected) {
    throw new Error(`the crash worker said ${done ? "nothing more" : JSON.stringify(value)}, not ${expected}`);
  }
}

run(null, async (client) => {
  const { child, lines } = startChild();
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(signal || code)));
  try {
    const id = await client.scheduleNewOrchestration("crashy", null, { instanceId: "crash-1" });
    await nextLine(lines, "activity-started");
    child.kill("SIGKILL");
    emit("child_exit", await exited);

    let calls = 0;
    const worker = newWorker();
    registerCrashy(worker, () => {
      calls += 1;
      return "from the second worker";
    });
    await worker.start();
    try {
      const done = await client.waitForOrchestrationCompletion(id, true, 60);
      emit("completed", [statusName(done), parse(done.serializedOutput)]);
      emit("second_worker_calls", calls);
    } finally {
      await worker.stop().catch((e) => console.error("worker stop:", e));
    }
  } finally {
    child.kill("SIGKILL");
  }
});
