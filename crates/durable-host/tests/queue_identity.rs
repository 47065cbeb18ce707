//! An identity-based queue connection: Azurite in OAuth mode (which needs HTTPS, so it gets a certificate from a
//! CA this test makes), the app settings `AzureWebJobsStorage__queueServiceUri` and `__credential =
//! managedidentity`, and a loopback stand-in for the App Service managed identity endpoint that issues a token
//! for the storage audience. A queue trigger must receive a message and its output binding must send one, both
//! with that bearer token; a token for another audience must get nothing through.
//!
//! `IDENTITY_ENDPOINT`, `IDENTITY_HEADER` and `SSL_CERT_FILE` (how the SDK's TLS trusts the test CA) are
//! process-wide, so this binary has its own `main` (no test harness) and sets them before any thread exists.

mod azurite;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use azurite::{Azurite, Tls, b64};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use durable_core::Registry;
use durable_handler::{FunctionApp, InvocationContext, OutputBinding, QueueTrigger};
use durable_host::{BackendChoice, HostOptions};
use serde_json::json;

const TEST_NAME: &str = "an_identity_based_connection_uses_entra_tokens";
const SECRET: &str = "loopback-identity-secret";
const HANDLER_ENV: &str = "DURABLE_QUEUE_IDENTITY_HANDLER";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(HANDLER_ENV).is_some() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        return runtime.block_on(durable_handler::serve(handler())).unwrap();
    }
    if args.iter().any(|a| a == "--list") {
        println!("{TEST_NAME}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| TEST_NAME.contains(f.as_str())) {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return;
    }
    println!("\nrunning 1 test");
    let certs = tempfile::tempdir().unwrap();
    let tls = make_tls(certs.path()).unwrap();
    let identity = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    identity.set_nonblocking(true).unwrap();
    // SAFETY: no other thread exists yet (the runtime is built below), so nothing reads the environment
    // concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            "IDENTITY_ENDPOINT",
            format!("http://{}/msi/token", identity.local_addr().unwrap()),
        );
        std::env::set_var("IDENTITY_HEADER", SECRET);
        std::env::set_var("SSL_CERT_FILE", certs.path().join("ca.pem"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(the_test(identity, tls)).unwrap();
    println!(
        "test {TEST_NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}

fn handler() -> durable_handler::Handler {
    FunctionApp::new(Registry::new())
        .queue(
            "Relay",
            QueueTrigger::new("identity-in").output(OutputBinding::queue("out", "identity-out")),
            |message: String, ctx: InvocationContext| async move {
                ctx.set_output("out", format!("relayed {message}"))?;
                Ok(())
            },
        )
        .build()
        .unwrap()
}

/// A CA, and a certificate it signed for 127.0.0.1 that Azurite serves.
fn make_tls(dir: &std::path::Path) -> Result<Tls> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "durable-rust queue test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&key, &issuer)?;
    let tls = Tls {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        ca_pem: ca_cert.pem(),
    };
    std::fs::write(&tls.cert, cert.pem())?;
    std::fs::write(&tls.key, key.serialize_pem())?;
    std::fs::write(dir.join("ca.pem"), &tls.ca_pem)?;
    Ok(tls)
}

/// An unsigned JWT with the claims Azurite's basic OAuth check reads (it does not verify signatures).
fn jwt(audience: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({
        "aud": audience, "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "oid": "test-identity",
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

#[derive(Clone)]
struct Identity {
    audience: Arc<Mutex<String>>,
    resources: Arc<Mutex<Vec<String>>>,
}

async fn issue_token(
    State(identity): State<Identity>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(SECRET)
    {
        return (StatusCode::BAD_REQUEST, "wrong identity header".into());
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    identity.resources.lock().unwrap().push(resource.clone());
    let audience = identity.audience.lock().unwrap().clone();
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = json!({
        "access_token": jwt(&audience),
        "expires_on": expires.to_string(),
        "token_type": "Bearer",
        "resource": resource,
    });
    (StatusCode::OK, body.to_string())
}

fn app_dir(azurite: &Azurite) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("host.json"), r#"{"version":"2.0"}"#)?;
    let values = json!({
        "AzureWebJobsStorage__queueServiceUri": azurite.service_url(),
        "AzureWebJobsStorage__credential": "managedidentity",
    });
    std::fs::write(
        dir.path().join("local.settings.json"),
        json!({ "Values": values }).to_string(),
    )?;
    handler().write_function_files(dir.path())?;
    Ok(dir)
}

async fn start_host(dir: &std::path::Path) -> Result<durable_host::HostHandle> {
    Ok(durable_host::start(
        HostOptions::new(dir)
            .with_port(0)
            .with_handler(std::env::current_exe()?)
            .with_handler_env(HANDLER_ENV, "1")
            .with_backend(BackendChoice::EmbeddedInMemory),
    )
    .await?)
}

async fn the_test(listener: std::net::TcpListener, tls: Tls) -> Result<()> {
    let identity = Identity {
        audience: Arc::new(Mutex::new("https://storage.azure.com".into())),
        resources: Arc::new(Mutex::new(Vec::new())),
    };
    let app = axum::Router::new()
        .route("/msi/token", axum::routing::get(issue_token))
        .with_state(identity.clone());
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let Some(azurite) = Azurite::start(&["--oauth", "basic"], Some(&tls)).await? else {
        return Ok(());
    };
    azurite.create_queue("identity-in").await?;
    azurite.put("identity-in", &b64("first")).await?;
    let dir = app_dir(&azurite)?;
    let host = start_host(dir.path()).await?;
    azurite
        .wait_for("identity-out", &[b64("relayed first")])
        .await?;
    azurite.wait_for("identity-in", &[]).await?;
    let resources = identity.resources.lock().unwrap().clone();
    assert!(
        !resources.is_empty() && resources.iter().all(|r| r == "https://storage.azure.com"),
        "token requests: {resources:?}"
    );
    host.stop().await?;

    // A token for another audience is refused by the service: the message stays where it is.
    *identity.audience.lock().unwrap() = "https://vault.azure.net".into();
    azurite.put("identity-in", &b64("second")).await?;
    let host = start_host(dir.path()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let polled_before = azurite.reads("identity-in");
    // Wait until the host has tried (and failed) to receive a few times with its token.
    while azurite.reads("identity-in") < polled_before + 3 {
        if tokio::time::Instant::now() > deadline {
            bail!("the host never polled with the wrong token");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(azurite.peek("identity-in").await?, [b64("second")]);
    assert_eq!(azurite.peek("identity-out").await?, [b64("relayed first")]);
    host.stop().await?;
    azurite.stop().await
}
