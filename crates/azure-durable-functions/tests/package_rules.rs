//! `package`'s checks, one rule at a time, through the library with an executable given (no cargo build): each
//! refusal names its file and rule, and a refused package writes no zip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use azure_durable_functions::package::{PackageError, PackageOptions, package};
use azure_durable_functions::{
    ActivityContext, ActivityError, AuthLevel, FunctionApp, FunctionError, Handler, HttpRequest,
    HttpResponse, HttpTrigger, InvocationContext, Registry,
};
use serde_json::{Value, json};

async fn echo(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
    Ok(input)
}

async fn hello(_req: HttpRequest, _ctx: InvocationContext) -> Result<HttpResponse, FunctionError> {
    Ok(HttpResponse::text("hello"))
}

fn handler() -> Handler {
    let mut registry = Registry::new();
    registry.add_activity("Echo", echo);
    FunctionApp::new(registry)
        .http(
            "Hello",
            HttpTrigger::new()
                .route("hello")
                .auth_level(AuthLevel::Anonymous),
            hello,
        )
        .build()
        .expect("a valid app")
}

fn good_host() -> Value {
    json!({
        "version": "2.0",
        "customHandler": {
            "description": {"defaultExecutablePath": "orders", "workingDirectory": "", "arguments": []},
            "enableForwardingHttpRequest": true
        },
        "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.30.0, 5.0.0)"},
        "extensions": {"durableTask": {
            "hubName": "%TASKHUB_NAME%",
            "storageProvider": {"type": "azureManaged", "connectionStringName": "DTS_CONNECTION"}
        }}
    })
}

/// An app folder with this host.json and a stand-in Linux executable.
struct App {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    exe: PathBuf,
    out: PathBuf,
}

impl App {
    fn new(host: &Value) -> Result<App> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("app");
        std::fs::create_dir(&dir)?;
        std::fs::write(dir.join("host.json"), serde_json::to_vec_pretty(host)?)?;
        let exe = tmp.path().join("orders-linux");
        std::fs::write(&exe, b"\x7fELF\x02\x01\x01 a stand-in executable")?;
        let out = tmp.path().join("out");
        Ok(App {
            _tmp: tmp,
            dir,
            exe,
            out,
        })
    }

    fn options(&self) -> PackageOptions {
        PackageOptions::new(&self.dir, "orders")
            .with_executable(&self.exe)
            .with_out_dir(&self.out)
    }

    fn package(&self, options: PackageOptions) -> Result<(), PackageError> {
        let result = package(&handler(), &options).map(|_| ());
        if result.is_err() {
            assert!(
                !self.out.join("orders.zip").exists(),
                "a refused package left a zip"
            );
        }
        result
    }

    fn write(&self, path: &str, text: &str) -> Result<()> {
        let path = self.dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
        Ok(())
    }
}

fn zip_modes(path: &Path) -> Result<BTreeMap<String, u32>> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let mut modes = BTreeMap::new();
    for i in 0..archive.len() {
        let entry = archive.by_index(i)?;
        modes.insert(
            entry.name().to_owned(),
            entry.unix_mode().unwrap_or(0) & 0o777,
        );
    }
    Ok(modes)
}

#[test]
fn a_valid_app_is_zipped_at_the_root_with_modes_and_without_local_files() -> Result<()> {
    let app = App::new(&good_host())?;
    app.write(
        "local.settings.json",
        r#"{"Values":{"X":"AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}"#,
    )?;
    app.write(".env", "SECRET=1")?;
    app.write("static/css/site.css", "body { color: black }")?;
    let report = package(&handler(), &app.options().with_includes(["static"]))?;
    assert_eq!(report.zip, app.out.join("orders.zip"));
    let expected: BTreeMap<String, u32> = [
        ("host.json", 0o644),
        ("orders", 0o755),
        ("Echo/", 0o755),
        ("Echo/function.json", 0o644),
        ("Hello/", 0o755),
        ("Hello/function.json", 0o644),
        ("static/", 0o755),
        ("static/css/", 0o755),
        ("static/css/site.css", 0o644),
    ]
    .into_iter()
    .map(|(name, mode)| (name.to_owned(), mode))
    .collect();
    assert_eq!(zip_modes(&report.zip)?, expected);

    // What the deploy commands say comes from host.json.
    let steps = report.next_steps();
    assert!(steps.contains("TASKHUB_NAME=$TASKHUB"), "{steps}");
    assert!(steps.contains("\"DTS_CONNECTION=Endpoint="), "{steps}");
    assert!(steps.contains("--src"), "{steps}");
    assert!(
        steps.contains("the executable given with --executable"),
        "{steps}"
    );

    // The same input makes the same zip.
    let first = std::fs::read(&report.zip)?;
    let again = package(&handler(), &app.options().with_includes(["static"]))?;
    assert_eq!(std::fs::read(again.zip)?, first);
    Ok(())
}

fn refusal(host: Value) -> String {
    let app = App::new(&host).expect("app folder");
    match app.package(app.options()) {
        Ok(()) => panic!("packaged despite {host}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn host_json_rules_each_have_their_error() {
    let mut wrong_exe = good_host();
    wrong_exe["customHandler"]["description"]["defaultExecutablePath"] = json!("durable-app");
    let message = refusal(wrong_exe);
    assert!(
        message.contains("defaultExecutablePath is \"durable-app\"")
            && message.contains("set it to \"orders\""),
        "{message}"
    );

    let mut no_exe = good_host();
    no_exe["customHandler"] = json!({});
    assert!(refusal(no_exe).contains("defaultExecutablePath is missing"));

    let mut bundle_id = good_host();
    bundle_id["extensionBundle"]["id"] = json!("Microsoft.Azure.Functions.ExtensionBundle.Preview");
    let message = refusal(bundle_id);
    assert!(message.contains("extensionBundle.id"), "{message}");

    let mut old_bundle = good_host();
    old_bundle["extensionBundle"]["version"] = json!("[4.0.0, 4.29.0)");
    let message = refusal(old_bundle);
    assert!(
        message.contains("admits no bundle with the Durable Task Scheduler provider"),
        "{message}"
    );

    let mut bad_range = good_host();
    bad_range["extensionBundle"]["version"] = json!("[4.30.0, 5.0.0");
    assert!(refusal(bad_range).contains("is not a version range"));

    let mut no_bundle = good_host();
    no_bundle.as_object_mut().unwrap().remove("extensionBundle");
    assert!(refusal(no_bundle).contains("extensionBundle.id is missing"));

    let mut storage = good_host();
    storage["extensions"]["durableTask"]["storageProvider"]["type"] = json!("AzureStorage");
    let message = refusal(storage);
    assert!(
        message.contains("storageProvider.type is \"AzureStorage\"")
            && message.contains("azureManaged"),
        "{message}"
    );

    let mut version = good_host();
    version["version"] = json!("1.0");
    assert!(refusal(version).contains("\"version\" must be \"2.0\""));
}

#[test]
fn host_json_that_is_missing_or_not_json_is_named() -> Result<()> {
    let app = App::new(&good_host())?;
    std::fs::write(app.dir.join("host.json"), "{ not json")?;
    let message = app.package(app.options()).unwrap_err().to_string();
    assert!(message.contains("host.json: not valid JSON"), "{message}");

    std::fs::remove_file(app.dir.join("host.json"))?;
    let message = app.package(app.options()).unwrap_err().to_string();
    assert!(message.contains("host.json: not found"), "{message}");
    Ok(())
}

#[test]
fn secrets_and_local_files_are_refused_by_name_and_content() -> Result<()> {
    let app = App::new(&good_host())?;
    app.write("config/local.settings.json", "{}")?;
    let error = app
        .package(app.options().with_includes(["config"]))
        .unwrap_err();
    assert!(
        matches!(error, PackageError::ForbiddenFile { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("config/local.settings.json"),
        "{error}"
    );

    app.write("env/.env.production", "X=1")?;
    let error = app
        .package(app.options().with_includes(["env"]))
        .unwrap_err();
    assert!(
        error.to_string().contains(".env files hold secrets"),
        "{error}"
    );

    app.write(
        "settings/queue.txt",
        "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=",
    )?;
    let error = app
        .package(app.options().with_includes(["settings/queue.txt"]))
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("settings/queue.txt") && message.contains("shared access key"),
        "{message}"
    );
    assert!(
        !message.contains("YWJjZGVm"),
        "the secret itself was printed: {message}"
    );

    // A connection string compiled into the executable.
    std::fs::write(
        &app.exe,
        b"\x7fELF....Endpoint=https://s.durabletask.io;Authentication=ClientSecret;ClientSecret=Q~abc.def_1234567;",
    )?;
    let error = app.package(app.options()).unwrap_err();
    assert!(
        error.to_string().contains("orders") && error.to_string().contains("client secret"),
        "{error}"
    );

    // One in host.json.
    let mut host = good_host();
    host["extensions"]["durableTask"]["storageProvider"]["connectionStringName"] =
        json!("AccountName=a;AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0");
    let app = App::new(&host)?;
    let error = app.package(app.options()).unwrap_err();
    assert!(
        error.to_string().contains("host.json")
            && error.to_string().contains("storage account key"),
        "{error}"
    );
    Ok(())
}

#[test]
fn includes_stay_inside_the_app_and_do_not_replace_generated_files() -> Result<()> {
    let app = App::new(&good_host())?;
    for outside in ["../elsewhere", "/etc/hostname"] {
        let error = app
            .package(app.options().with_includes([outside]))
            .unwrap_err();
        assert!(
            error.to_string().contains("inside the app folder"),
            "{error}"
        );
    }
    app.write("Echo/function.json", "{}")?;
    let error = app
        .package(app.options().with_includes(["Echo"]))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("Echo/function.json is already in the package"),
        "{error}"
    );

    let error = app
        .package(app.options().with_includes(["missing"]))
        .unwrap_err();
    assert!(matches!(error, PackageError::Io { .. }), "{error}");
    Ok(())
}

#[test]
fn an_executable_that_is_not_linux_is_refused() -> Result<()> {
    let app = App::new(&good_host())?;
    std::fs::write(&app.exe, b"MZ\x90\x00 a Windows executable")?;
    let error = app.package(app.options()).unwrap_err();
    assert!(
        error.to_string().contains("is not a Linux executable"),
        "{error}"
    );
    Ok(())
}
