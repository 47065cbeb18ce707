// Failures: an activity's error reaches the orchestration with its type, message and stack; an uncaught one
// fails the instance with those details; results over the backend's payload limit fail too; a retry policy
// retries until the activity succeeds.
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
    worker.addNamedActivity("huge", () => "x".repeat(1100 * 1024));
    worker.addNamedOrchestrator("too_big_result", async function* (ctx) {
      try {
        const result = yield ctx.callActivity("huge");
        return { length: result.length };
      } catch (e) {
        return { errorType: e.details.errorType, message: e.details.message };
      }
    });
    worker.addNamedOrchestrator("too_big_output", async function* () {
      return "y".repeat(1100 * 1024);
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

    const big = await client.scheduleNewOrchestration("too_big_result");
    const bigDone = await client.waitForOrchestrationCompletion(big, true, 60);
    emit("too_big_result", [statusName(bigDone), parse(bigDone.serializedOutput)]);
    const bigOut = await client.scheduleNewOrchestration("too_big_output");
    const bigOutDone = await client.waitForOrchestrationCompletion(bigOut, true, 60);
    emit("too_big_output", [
      statusName(bigOutDone),
      bigOutDone.failureDetails ? bigOutDone.failureDetails.errorType : null,
      bigOutDone.serializedOutput ? bigOutDone.serializedOutput.length : null,
    ]);

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
