//! Headless Chromium driven over the DevTools protocol: just what the dashboard's browser tests need (navigate,
//! evaluate, wait for a condition, take a screenshot), over the browser's WebSocket.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::LIMIT;

/// The viewport every page is rendered in.
pub const WIDTH: u32 = 1440;
pub const HEIGHT: u32 = 900;

pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: String,
    /// Script errors and console errors the page reported.
    pub errors: Vec<String>,
}

impl Browser {
    pub async fn launch(executable: &Path) -> Result<Browser> {
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(executable)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                &format!("--window-size={WIDTH},{HEIGHT}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", executable.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let find = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("Chromium exited before it listened")
        };
        let url = tokio::time::timeout(LIMIT, find)
            .await
            .context("Chromium did not start listening")??;
        // Keep reading, so that a chatty browser never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .context("cannot connect to the DevTools endpoint")?;
        let mut browser = Browser {
            child,
            _profile: profile,
            ws,
            next_id: 0,
            session: String::new(),
            errors: Vec::new(),
        };
        let target = browser
            .send(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target_id = target["targetId"]
            .as_str()
            .context("no target id")?
            .to_owned();
        let attached = browser
            .send(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        browser.session = attached["sessionId"]
            .as_str()
            .context("no session id")?
            .to_owned();
        browser.call("Page.enable", json!({})).await?;
        browser.call("Runtime.enable", json!({})).await?;
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false }),
            )
            .await?;
        Ok(browser)
    }

    /// A command to the page.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.send(Some(&session), method, params).await
    }

    async fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws.send(Message::text(message.to_string())).await?;
        let answer = async {
            while let Some(frame) = self.ws.next().await {
                let Message::Text(text) = frame? else {
                    continue;
                };
                let value: Value = serde_json::from_str(&text)?;
                if value["id"].as_u64() == Some(id) {
                    if let Some(error) = value.get("error") {
                        bail!("{method}: {error}");
                    }
                    return Ok(value["result"].clone());
                }
                self.note_event(&value);
            }
            bail!("the DevTools connection closed")
        };
        tokio::time::timeout(LIMIT, answer)
            .await
            .with_context(|| format!("{method} got no answer"))?
    }

    fn note_event(&mut self, event: &Value) {
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &event["params"]["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("exception");
                self.errors.push(text.to_owned());
            }
            Some("Runtime.consoleAPICalled") if event["params"]["type"] == "error" => {
                self.errors.push(event["params"]["args"].to_string());
            }
            _ => {}
        }
    }

    /// Evaluates an expression in the page (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Result<Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            bail!("{expression}: {details}");
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it is truthy (at most [`LIMIT`]) and returns its value. An expression that throws
    /// counts as not yet: after a click on a link the old document goes before the new one has a body.
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let (value, thrown) = match self.eval(expression).await {
                Ok(value) => (value, None),
                Err(e) => (Value::Null, Some(e)),
            };
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if tokio::time::Instant::now() >= deadline {
                let text = self
                    .eval("document.getElementById('main') ? document.getElementById('main').innerText.slice(0, 600) : ''")
                    .await
                    .unwrap_or_default();
                let thrown = thrown.map(|e| format!("; last evaluation threw: {e}"));
                bail!(
                    "{what}: not seen within {LIMIT:?}; page: {text}; errors: {:?}{}",
                    self.errors,
                    thrown.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a page and waits until the dashboard has drawn it.
    pub async fn open(&mut self, url: &str) -> Result<()> {
        self.eval("window.__leaving = true").await?;
        self.call("Page.navigate", json!({ "url": url })).await?;
        self.wait_for(
            &format!("{url} drawn"),
            "!window.__leaving && document.body && document.body.dataset.state === 'ready'",
        )
        .await?;
        Ok(())
    }

    /// Clicks the element `selector` finds (which must be there and enabled).
    pub async fn click(&mut self, selector: &str) -> Result<()> {
        let selector_json = serde_json::to_string(selector)?;
        let clicked = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({selector_json}); if (!e || e.disabled) return false; e.click(); return true; }})()"
            ))
            .await?;
        if clicked != Value::Bool(true) {
            bail!("{selector}: nothing to click");
        }
        Ok(())
    }

    /// A PNG of the whole page (not only the viewport) at `path`.
    pub async fn screenshot(&mut self, path: &Path) -> Result<()> {
        let height = self
            .eval("Math.ceil(Math.max(document.documentElement.scrollHeight, document.body.scrollHeight))")
            .await?
            .as_u64()
            .unwrap_or(u64::from(HEIGHT))
            .max(u64::from(HEIGHT));
        let params = json!({
            "format": "png",
            "captureBeyondViewport": true,
            "clip": { "x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1 },
        });
        self.save_screenshot(params, path).await
    }

    /// A PNG of what the viewport shows (a modal dialog with its backdrop, say) at `path`.
    pub async fn screenshot_viewport(&mut self, path: &Path) -> Result<()> {
        self.save_screenshot(json!({ "format": "png" }), path).await
    }

    async fn save_screenshot(&mut self, params: Value, path: &Path) -> Result<()> {
        let shot = self.call("Page.captureScreenshot", params).await?;
        let data = shot["data"].as_str().context("no screenshot data")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    pub async fn close(mut self) -> Result<()> {
        let _ = self.send(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
        Ok(())
    }
}
