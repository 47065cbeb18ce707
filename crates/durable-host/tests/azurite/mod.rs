//! A real Azurite queue service for a test, and a small client of its own to arrange and inspect queues. The client
//! signs with Shared Key, written here from the REST reference, so that the host's SDK-based client is checked
//! against Azurite rather than against itself.
//!
//! Azurite comes from npm (`bash scripts/setup-azurite.sh`); `durable_testkit::azurite_queue` finds `azurite-queue`
//! (`$DURABLE_AZURITE`, the script's `scripts/azurite/node_modules`, or `<workspace>/node_modules`). Without it the
//! tests say `skipped` and pass, except under the verify script (`DURABLE_REQUIRE_PEERS`) or CI, where they fail.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// HTTPS for Azurite: its certificate and key files, and the CA a client must trust.
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca_pem: String,
}

pub struct Azurite {
    child: tokio::process::Child,
    pub port: u16,
    pub data: tempfile::TempDir,
    pub debug_log: PathBuf,
    scheme: &'static str,
    http: reqwest::Client,
}

impl Azurite {
    /// Starts Azurite's queue service on a free port; `None` (after saying why) when it is not installed and not
    /// required.
    pub async fn start(extra: &[&str], tls: Option<&Tls>) -> Result<Option<Azurite>> {
        let Some(exe) = durable_testkit::azurite_queue() else {
            return Ok(None);
        };
        let data = tempfile::tempdir()?;
        let debug_log = data.path().join("debug.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(["--queuePort", &port.to_string(), "--location"])
            .arg(data.path())
            .arg("--debug")
            .arg(&debug_log)
            .args(["--silent"])
            .args(extra);
        let mut http = reqwest::Client::builder();
        if let Some(tls) = tls {
            command
                .arg("--cert")
                .arg(&tls.cert)
                .arg("--key")
                .arg(&tls.key);
            http =
                http.add_root_certificate(reqwest::Certificate::from_pem(tls.ca_pem.as_bytes())?);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", exe.display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                bail!("azurite never listened on {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(Azurite {
            child,
            port,
            data,
            debug_log,
            scheme: if tls.is_some() { "https" } else { "http" },
            http: http.build()?,
        }))
    }

    /// The queue service URL, path-style (`.../devstoreaccount1`).
    pub fn service_url(&self) -> String {
        format!("{}://127.0.0.1:{}/{ACCOUNT}", self.scheme, self.port)
    }

    /// A connection string with the account key, as a user writes one for Azurite on another port.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol={};AccountName={ACCOUNT};AccountKey={KEY};QueueEndpoint={};",
            self.scheme,
            self.service_url()
        )
    }

    /// A Shared Key signed call (`Authorize with Shared Key` in the Storage REST reference).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<(u16, String)> {
        let date = time::OffsetDateTime::now_utc().format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))?;
        let length = body.as_ref().map_or(String::new(), |b| b.len().to_string());
        let content_type = if body.is_some() {
            "application/xml"
        } else {
            ""
        };
        let mut resource = format!("/{ACCOUNT}/{ACCOUNT}{path}");
        let mut sorted: Vec<_> = query.to_vec();
        sorted.sort();
        for (k, v) in sorted {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "{method}\n\n\n{length}\n\n{content_type}\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2021-12-02\n{resource}"
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &BASE64.decode(KEY)?);
        let signature = BASE64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.service_url()))
            .query(query)
            .header("x-ms-date", date)
            .header("x-ms-version", "2021-12-02")
            .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"));
        if let Some(body) = body {
            request = request.header("Content-Type", content_type).body(body);
        }
        let response = request.send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    pub async fn create_queue(&self, queue: &str) -> Result<()> {
        let (status, body) = self
            .call(reqwest::Method::PUT, &format!("/{queue}"), &[], None)
            .await?;
        anyhow::ensure!(
            status == 201 || status == 204,
            "create {queue}: {status} {body}"
        );
        Ok(())
    }

    /// Adds a message whose wire text is `text` (encode it first for a base64 reader).
    pub async fn put(&self, queue: &str, text: &str) -> Result<()> {
        let body = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            escape(text)
        );
        let (status, reply) = self
            .call(
                reqwest::Method::POST,
                &format!("/{queue}/messages"),
                &[],
                Some(body),
            )
            .await?;
        anyhow::ensure!(status == 201, "put to {queue}: {status} {reply}");
        Ok(())
    }

    /// The wire texts of the visible messages (up to 32), oldest first; empty for a missing queue.
    pub async fn peek(&self, queue: &str) -> Result<Vec<String>> {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/{queue}/messages"),
                &[("numofmessages", "32"), ("peekonly", "true")],
                None,
            )
            .await?;
        if status == 404 {
            return Ok(Vec::new());
        }
        anyhow::ensure!(status == 200, "peek {queue}: {status} {body}");
        Ok(body
            .split("<MessageText>")
            .skip(1)
            .filter_map(|chunk| chunk.split_once("</MessageText>"))
            .map(|(text, _)| unescape(text))
            .collect())
    }

    /// Waits (bounded) until `queue` holds exactly `expected` (wire texts, in order).
    pub async fn wait_for(&self, queue: &str, expected: &[String]) -> Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let found = self.peek(queue).await?;
            if found == expected {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("queue {queue} holds {found:?}, expected {expected:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// When Azurite received each request to get messages from `queue`, from its debug log.
    pub fn polls(&self, queue: &str) -> Vec<time::OffsetDateTime> {
        let needle = "RequestMethod=GET RequestURL=";
        let path = format!("/{ACCOUNT}/{queue}/messages?");
        std::fs::read_to_string(&self.debug_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle) && l.contains(&path) && !l.contains("peekonly"))
            .filter_map(|l| l.split(' ').next())
            .filter_map(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .collect()
    }

    /// How many reads of `queue` (checks and receives, not this client's peeks) Azurite has logged.
    pub fn reads(&self, queue: &str) -> usize {
        let path = format!("/{ACCOUNT}/{queue}");
        std::fs::read_to_string(&self.debug_log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("RequestMethod=GET RequestURL=") && !l.contains("peekonly"))
            .filter(|l| {
                l.split("RequestURL=")
                    .nth(1)
                    .and_then(|u| u.split(' ').next())
                    .is_some_and(|u| {
                        u.contains(&format!("{path}?")) || u.contains(&format!("{path}/"))
                    })
            })
            .count()
    }

    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xD;", "\r")
        .replace("&#xA;", "\n")
        .replace("&amp;", "&")
}

pub fn b64(text: &str) -> String {
    BASE64.encode(text)
}
