// The functions of the worker_crash scenario, and (run as a script) the worker it starts as a child process and
// kills while that worker holds an activity. The child prints "activity-started" when the activity it will
// never finish begins.
"use strict";

// Registers the orchestration and its one activity, whose body is `activity`.
function registerCrashy(worker, activity) {
  worker.addNamedActivity("slow", activity);
  worker.addNamedOrchestrator("crashy", async function* (ctx) {
    const result = yield ctx.callActivity("slow");
    return `activity answered: ${result}`;
  });
}

if (require.main === module) {
  const { newWorker } = require("./prelude");
  const worker = newWorker();
  registerCrashy(worker, () => {
    process.stdout.write("activity-started\n");
    return new Promise(() => {});
  });
  worker.start().catch((error) => {
    console.error("crash worker failed to start:", error);
    process.exit(1);
  });
}

module.exports = { registerCrashy };
