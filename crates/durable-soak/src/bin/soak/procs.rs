//! The three long-lived processes of the run: the `durable-backend` command on the database file, the
//! `durable-host` command pointed at it, and the `soak-handler` the host starts. Starting, SIGKILLing, restarting,
//! stopping with SIGTERM, and reading their memory from `/proc`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rustix::process::{Pid, Signal};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// Which process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Role {
    Backend,
    Host,
    Handler,
}

impl Role {
    pub(crate) const ALL: [Role; 3] = [Role::Backend, Role::Host, Role::Handler];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Backend => "backend",
            Role::Host => "host",
            Role::Handler => "handler",
        })
    }
}

/// The programs, normally the siblings of this one in the target directory.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    pub(crate) backend: PathBuf,
    pub(crate) host: PathBuf,
    pub(crate) handler: PathBuf,
}

impl Programs {
    pub(crate) fn find(dir: Option<PathBuf>) -> Result<Self> {
        let dir = match dir {
            Some(dir) => dir,
            None => std::env::current_exe()?
                .parent()
                .context("this program has no directory")?
                .to_path_buf(),
        };
        let programs = Programs {
            backend: dir.join("durable-backend"),
            host: dir.join("durable-host"),
            handler: dir.join("soak-handler"),
        };
        for program in [&programs.backend, &programs.host, &programs.handler] {
            if !program.is_file() {
                bail!(
                    "{} is missing: build the commands first (cargo build --release -p durable-backend -p durable-host -p durable-soak), or use scripts/soak.sh",
                    program.display()
                );
            }
        }
        Ok(programs)
    }
}

/// The processes of the run and where their logs go.
pub(crate) struct Processes {
    programs: Programs,
    dir: PathBuf,
    db: PathBuf,
    backend_port: u16,
    backend: Option<Child>,
    host: Option<Child>,
    /// The backend's gRPC endpoint (the same across restarts).
    pub(crate) endpoint: String,
}

impl Processes {
    /// Writes the app folder (host.json, function folders) into `dir` and starts the backend and the host.
    pub(crate) async fn start(programs: Programs, dir: &Path) -> Result<Self> {
        let app = dir.join("app");
        std::fs::create_dir_all(&app)?;
        let host_json = serde_json::json!({
            "version": "2.0",
            "customHandler": { "description": { "defaultExecutablePath": programs.handler } },
            "extensions": { "durableTask": { "hubName": "soak" } },
        });
        std::fs::write(app.join("host.json"), host_json.to_string())?;
        durable_handler::FunctionApp::new(durable_soak::workload::registry())
            .build()?
            .write_function_files(&app)?;
        let backend_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut processes = Processes {
            programs,
            dir: dir.to_path_buf(),
            db: dir.join("soak.db"),
            backend_port,
            backend: None,
            host: None,
            endpoint: format!("http://127.0.0.1:{backend_port}"),
        };
        processes.start_backend().await?;
        processes.start_host().await?;
        Ok(processes)
    }

    pub(crate) fn db(&self) -> &Path {
        &self.db
    }

    fn log(&self, name: &str) -> Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))?)
    }

    async fn start_backend(&mut self) -> Result<()> {
        let port = self.backend_port.to_string();
        let mut attempts = 0;
        loop {
            let command = Command::new(&self.programs.backend)
                .args(["--port", &port, "--db"])
                .arg(&self.db)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(self.log("backend")?)
                .kill_on_drop(true)
                .spawn()
                .context("cannot start durable-backend")?;
            match listening(command, "durable-backend listening on ", "backend").await {
                Ok(child) => {
                    self.backend = Some(child);
                    return Ok(());
                }
                // The port of a killed backend can take a moment to be free again.
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    eprintln!("soak: backend did not start ({e:#}); trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn start_host(&mut self) -> Result<()> {
        let command = Command::new(&self.programs.host)
            .arg("--app-dir")
            .arg(self.dir.join("app"))
            .args(["--port", "0", "--connection-string"])
            .arg(format!("Endpoint={};Authentication=None", self.endpoint))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(self.log("host")?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start durable-host")?;
        self.host = Some(listening(command, "durable-host listening on ", "host").await?);
        Ok(())
    }

    /// The process id of each role right now (the handler's is `None` while the host restarts it).
    pub(crate) fn pid(&self, role: Role) -> Option<u32> {
        match role {
            Role::Backend => self.backend.as_ref()?.id(),
            Role::Host => self.host.as_ref()?.id(),
            Role::Handler => handlers_of(self.pid(Role::Host)?).into_iter().next(),
        }
    }

    /// SIGKILLs `role` and starts it again (the host restarts a handler by itself). Returns how long until the
    /// role had a running process again.
    pub(crate) async fn kill(&mut self, role: Role, pause: Duration) -> Result<Duration> {
        match role {
            Role::Backend => {
                let child = self.backend.as_mut().context("no backend")?;
                sigkill(child).await;
                tokio::time::sleep(pause).await;
                let since = Instant::now();
                self.start_backend().await?;
                Ok(since.elapsed())
            }
            Role::Host => {
                let child = self.host.as_mut().context("no host")?;
                let handlers = child.id().map(handlers_of).unwrap_or_default();
                sigkill(child).await;
                // The host ran its handler in a process group of its own, which outlives it: a machine that loses
                // its host loses the handler too.
                for pid in handlers {
                    signal(pid, Signal::KILL);
                }
                tokio::time::sleep(pause).await;
                let since = Instant::now();
                self.start_host().await?;
                Ok(since.elapsed())
            }
            Role::Handler => {
                let host = self.pid(Role::Host).context("no host")?;
                let old = handlers_of(host);
                let Some(&victim) = old.first() else {
                    bail!("the host has no handler running");
                };
                signal(victim, Signal::KILL);
                let since = Instant::now();
                loop {
                    let now = handlers_of(host);
                    if now.iter().any(|pid| *pid != victim) {
                        return Ok(since.elapsed());
                    }
                    if since.elapsed() > START_LIMIT {
                        bail!("the host did not restart its handler within {START_LIMIT:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Whether every role has a live process (a process that exited on its own is a failure of the run).
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        for (role, child) in [
            (Role::Backend, &mut self.backend),
            (Role::Host, &mut self.host),
        ] {
            let child = child.as_mut().with_context(|| format!("no {role}"))?;
            if let Some(status) = child.try_wait()? {
                bail!("the {role} exited on its own ({status}); see its log");
            }
        }
        Ok(())
    }

    /// SIGTERM to the host (which stops its handler) and then to the backend, each waited for.
    pub(crate) async fn stop(&mut self) -> Result<()> {
        if let Some(mut host) = self.host.take() {
            let handlers = host.id().map(handlers_of).unwrap_or_default();
            sigterm(&mut host, "host").await?;
            let since = Instant::now();
            while handlers.iter().any(|pid| alive(*pid)) {
                if since.elapsed() > STOP_LIMIT {
                    bail!("the handler outlived its host's SIGTERM");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(mut backend) = self.backend.take() {
            sigterm(&mut backend, "backend").await?;
        }
        Ok(())
    }
}

/// Waits for the line a command prints once it listens, then keeps draining its output.
async fn listening(mut child: Child, prefix: &str, what: &str) -> Result<Child> {
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(START_LIMIT, async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with(prefix) {
                return Ok::<_, anyhow::Error>(true);
            }
        }
        Ok(false)
    })
    .await;
    match found {
        Ok(Ok(true)) => {
            // Read on, so a chatty process never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(child)
        }
        Ok(Ok(false)) => {
            let status = child.wait().await?;
            bail!("the {what} exited before listening ({status}); see its log")
        }
        Ok(Err(e)) => Err(e),
        Err(_) => bail!("the {what} did not listen within {START_LIMIT:?}"),
    }
}

fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

async fn sigkill(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

async fn sigterm(child: &mut Child, what: &str) -> Result<()> {
    if let Some(pid) = child.id() {
        signal(pid, Signal::TERM);
    }
    match tokio::time::timeout(STOP_LIMIT, child.wait()).await {
        Ok(status) => {
            let status = status?;
            if !status.success() {
                bail!("the {what} stopped with {status} after SIGTERM");
            }
            Ok(())
        }
        Err(_) => {
            sigkill(child).await;
            bail!("the {what} did not stop within {STOP_LIMIT:?} of SIGTERM")
        }
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_owned())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// The live children of `parent` (the host's only child is its handler).
fn handlers_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
                    let (_, rest) = stat.rsplit_once(')')?;
                    let mut fields = rest.split_whitespace();
                    let state = fields.next()?;
                    let ppid: u32 = fields.next()?.parse().ok()?;
                    Some(ppid == parent && state != "Z")
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Resident memory in KiB (`VmRSS`), or `None` when the process is gone.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}
