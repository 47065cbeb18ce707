// Failures: an activity's error reaches the orchestration with its type, message and stack; an uncaught one
// fails the instance with those details; a retry policy retries until the activity succeeds.
"use strict";
const { sdk, emit, statusName, parse, run } = require("../prelude");

class InsufficientFunds extends Error {
  constructor(message) {
    super(message);
    this.name = "InsufficientFunds";
  }
}

let flakyCalls = 0;

run(
  (worker) => {
    worker.addNamedActivity("withdraw", (_ctx, amount) => {
      throw new InsufficientFunds(`cannot withdraw ${amount}`);
    });
    worker.addNamedActivity("flaky", () => {
      flakyCalls += 1;
      if (flakyCalls < 3) {
        throw new Error(`attempt ${flakyCalls} failed`);
      }
      return `ok after ${flakyCalls}`;
    });
    worker.addNamedOrchestrator("catches", async function* (ctx) {
      try {
        yield ctx.callActivity("withdraw", 100);
        return null;
      } catch (e) {
        return {
          isTaskFailed: e instanceof sdk.TaskFailedError,
          errorType: e.details.errorType,
          message: e.details.message,
          hasStack: Boolean(e.details.stackTrace && e.details.stackTrace.includes("withdraw")),
        };
      }
    });
    worker.addNamedOrchestrator("does_not_catch", async function* (ctx) {
      yield ctx.callActivity("withdraw", 5);
      return "unreachable";
    });
    worker.addNamedOrchestrator("retries", async function* (ctx) {
      const retry = new sdk.RetryPolicy({
        maxNumberOfAttempts: 5,
        firstRetryIntervalInMilliseconds: 200,
        backoffCoefficient: 1,
      });
      return yield ctx.callActivity("flaky", null, { retry });
    });
  },
  async (client) => {
    const caught = await client.scheduleNewOrchestration("catches");
    const caughtDone = await client.waitForOrchestrationCompletion(caught, true, 60);
    emit("caught", [statusName(caughtDone), parse(caughtDone.serializedOutput)]);

    const failing = await client.scheduleNewOrchestration("does_not_catch");
    const failed = await client.waitForOrchestrationCompletion(failing, true, 60);
    const details = failed.failureDetails;
    emit("failed_status", statusName(failed));
    emit("failed_output", failed.serializedOutput ?? null);
    emit("failed_details", details ? { errorType: details.errorType, message: details.message } : null);
    emit("failed_has_stack", Boolean(details && details.stackTrace));
    try {
      failed.raiseIfFailed();
      emit("raise_if_failed", "did not throw");
    } catch (e) {
      emit("raise_if_failed", e.message.includes("cannot withdraw 5"));
    }

    const retried = await client.scheduleNewOrchestration("retries");
    const retriedDone = await client.waitForOrchestrationCompletion(retried, true, 60);
    emit("retried", [statusName(retriedDone), parse(retriedDone.serializedOutput), flakyCalls]);
    const history = await client.getOrchestrationHistory(retried);
    emit("retry_history", {
      failed: history.filter((e) => e.type === "TaskFailed").length,
      timers: history.filter((e) => e.type === "TimerFired").length,
    });
  },
);
