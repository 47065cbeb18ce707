//! The Functions app files at the repository root say what the handler and the deployment docs rely on.

use serde_json::Value;

fn read(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn host_json_launches_the_app_and_uses_the_scheduler() {
    let host = read("host.json");
    assert_eq!(host["version"], "2.0");
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "durable-app"
    );
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.30.0, 5.0.0)");
    let durable = &host["extensions"]["durableTask"];
    assert_eq!(durable["hubName"], "%TASKHUB_NAME%");
    assert_eq!(durable["storageProvider"]["type"], "azureManaged");
    assert_eq!(
        durable["storageProvider"]["connectionStringName"],
        "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    );
    // The handler's default route prefix must match the host's.
    assert_eq!(
        host["extensions"]["http"]["routePrefix"],
        durable_handler::HandlerOptions::new().route_prefix()
    );
}

#[test]
fn local_settings_sample_targets_the_emulator() {
    let settings = read("local.settings.sample.json");
    let values = &settings["Values"];
    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(values["AzureWebJobsStorage"], "UseDevelopmentStorage=true");
    assert_eq!(
        values["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"],
        "Endpoint=http://localhost:8080;TaskHub=default;Authentication=None"
    );
    assert_eq!(values["TASKHUB_NAME"], "default");
}
