// Shared set-up for the JavaScript interop scenarios run by tests/js_interop.rs.
//
// The Rust test starts the backend and passes its address in the environment; a scenario registers its
// orchestrations with one worker, drives them with one client, and reports what it saw as JSON lines on stdout
// (`{"check": NAME, "value": VALUE}`). The Rust side asserts on those values, so a scenario only observes.
"use strict";

const readline = require("node:readline");
const grpc = require("@grpc/grpc-js");
const sdk = require("@microsoft/durabletask-js");

// host:port, the form grpc-js expects (no scheme).
const ADDRESS = required("DURABLE_ADDRESS");
// The task hub, sent as the `taskhub` header exactly as the scheduler SDKs do; empty means no header at all.
const HUB = process.env.DURABLE_HUB || "";
// Everything the scenario does must finish within this bound, or it fails instead of hanging the test.
const LIMIT_MS = Number(process.env.DURABLE_JS_LIMIT_MS || 120000);
const VERBOSE = Boolean(process.env.DURABLE_JS_VERBOSE);

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set (these scripts are run by tests/js_interop.rs)`);
  }
  return value;
}

// The SDK logs to stdout by default, which would mix with the results; diagnostics go to stderr instead, where
// the Rust test shows them when a scenario fails.
const logger = {
  error: (message, ...args) => console.error("[sdk error]", message, ...args),
  warn: (message, ...args) => console.error("[sdk warn]", message, ...args),
  info: (message, ...args) => VERBOSE && console.error("[sdk info]", message, ...args),
  debug: (message, ...args) => VERBOSE && console.error("[sdk debug]", message, ...args),
};

function metadataFor(hub) {
  return async () => {
    const md = new grpc.Metadata();
    if (hub) {
      md.set("taskhub", hub);
    }
    return md;
  };
}

// A client of `hub` (the scenario's hub unless given).
function newClient(hub = HUB) {
  return new sdk.TaskHubGrpcClient({ hostAddress: ADDRESS, metadataGenerator: metadataFor(hub), logger });
}

// A worker of `hub` (the scenario's hub unless given); `options` adds to (or overrides) the defaults, e.g.
// `{ workItemFilters: "auto" }`.
function newWorker(options = {}, hub = HUB) {
  return new sdk.TaskHubGrpcWorker({
    hostAddress: ADDRESS,
    metadataGenerator: metadataFor(hub),
    logger,
    shutdownTimeoutMs: 5000,
    ...options,
  });
}

function emit(check, value) {
  process.stdout.write(JSON.stringify({ check, value: value === undefined ? null : value }) + "\n");
}

let stdinLines;

// Stops until the Rust test has done `name` (e.g. restarted the backend) and says so on stdin.
async function pause(name) {
  if (!stdinLines) {
    stdinLines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  }
  process.stdout.write(JSON.stringify({ pause: name }) + "\n");
  const { done } = await stdinLines.next();
  if (done) {
    throw new Error(`stdin closed while paused for ${name}`);
  }
}

// The status's name ("COMPLETED", "RUNNING", ...), or null for an instance that does not exist.
function statusName(state) {
  return state ? sdk.OrchestrationStatus[state.runtimeStatus] : null;
}

function parse(serialized) {
  return serialized === undefined || serialized === null || serialized === "" ? null : JSON.parse(serialized);
}

// Polls `probe` until it returns a truthy value; fails with `what` when the deadline passes first.
async function waitUntil(probe, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// The gRPC status code name of a failed call ("NOT_FOUND", ...), or the error itself when it is no gRPC error.
function grpcCode(error) {
  const code = error && (error.code ?? error.cause?.code);
  if (typeof code === "number" && grpc.status[code] !== undefined) {
    return grpc.status[code];
  }
  throw error;
}

// Runs a scenario: `register(worker)` adds its functions, `main(client)` drives them. The worker and client are
// stopped afterwards so the backend sees the streams close as they would in production. `workerOptions` go to
// the worker's constructor. With `register` null there is no worker: the scenario brings its own.
function run(register, main, workerOptions = {}) {
  const guard = setTimeout(() => {
    console.error(`scenario did not finish within ${LIMIT_MS} ms`);
    process.exit(3);
  }, LIMIT_MS);
  const worker = register ? newWorker(workerOptions) : null;
  const client = newClient();
  (async () => {
    if (worker) {
      register(worker);
      await worker.start();
    }
    try {
      await main(client, worker);
    } finally {
      // Both stops end with a fixed pause of the SDK's own; run them side by side.
      await Promise.all([
        worker && worker.stop().catch((e) => console.error("worker stop:", e)),
        client.stop().catch((e) => console.error("client stop:", e)),
      ]);
    }
  })().then(
    () => {
      clearTimeout(guard);
      emit("done", true);
      process.exit(0);
    },
    (error) => {
      console.error("scenario failed:", error && error.stack ? error.stack : error);
      process.exit(1);
    },
  );
}

module.exports = {
  sdk,
  grpc,
  ADDRESS,
  HUB,
  emit,
  pause,
  statusName,
  parse,
  waitUntil,
  grpcCode,
  newClient,
  newWorker,
  run,
};
