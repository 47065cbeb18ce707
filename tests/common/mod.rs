//! Shared by the end-to-end tests: the local host running the sample app as real processes, and a minimal
//! HTTP/1.1 client that talks to it the way curl does (one connection per request, `Connection: close`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use azure_durable_functions::host::{self, BackendChoice, HostHandle, HostOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The sample app under the local host: `cargo run`'s set-up, on a free port, with an in-memory backend.
pub(crate) async fn start_app() -> Result<HostHandle> {
    let app_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = HostOptions::new(app_dir)
        .with_port(0)
        .with_handler(env!("CARGO_BIN_EXE_durable-app"))
        .with_handler_args(["handler"])
        .with_function_generator(["functions", "write", "--dir"])
        .with_backend(BackendChoice::EmbeddedInMemory)
        .with_timers(false);
    Ok(host::start(options).await?)
}

/// One HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Lower-case names.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `curl -X <method> <url> -d <body>`.
pub(crate) async fn request(method: &str, url: &str, body: Option<&str>) -> Result<Reply> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let connect_to = authority.replace("localhost", "127.0.0.1");
    let mut stream = TcpStream::connect(&connect_to).await?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> Result<Reply> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .context("no status code")?
        .parse()?;
    let mut headers = BTreeMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut body = raw[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = unchunk(&body)?;
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn unchunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end])?.trim(), 16)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).context("short chunk")?);
        data = data.get(size + 2..).context("short chunk")?;
    }
}

/// Polls a `statusQueryGetUri` until the instance is done, within `limit`.
pub(crate) async fn wait_done(status_url: &str, limit: Duration) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let reply = request("GET", status_url, None).await?;
        match reply.status {
            200 => return reply.json(),
            202 => {}
            other => bail!("status {other}: {}", reply.text()),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("not done within {limit:?}: {}", reply.text());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `check` accepts a reply, within `limit`.
pub(crate) async fn wait_until(
    method: &str,
    url: &str,
    limit: Duration,
    check: impl Fn(&Reply) -> bool,
) -> Result<Reply> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let reply = request(method, url, None).await?;
        if check(&reply) {
            return Ok(reply);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "condition not met within {limit:?}; last reply {} {}",
                reply.status,
                reply.text()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
