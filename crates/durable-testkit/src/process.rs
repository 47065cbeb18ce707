//! Child processes that a test can wait on without hanging: every wait has a deadline, output is collected as it
//! comes, and the process is killed when the value is dropped.
//!
//! Reading a child's stdout "until the line appears" blocks forever when the line never comes and the child does
//! not exit, and reading its stderr to the end blocks for as long as any process holding the pipe lives (a
//! grandchild, such as the handler a host starts, keeps it open). A test run that hangs tells nobody which test or
//! why; a test that fails at its deadline with what the child printed does.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child whose stdout lines arrive on a channel and whose stdout and stderr are kept.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    stdout_lines: Receiver<String>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// One message per output stream read to its end.
    ended: Receiver<()>,
    streams: usize,
}

impl Spawned {
    /// Starts `command` with stdout and stderr piped and begins collecting both. stdin is what the command says
    /// (pipe it to talk to the child through [`Spawned::stdin`]).
    pub fn start(command: &mut Command) -> std::io::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, stdout_lines) = mpsc::channel();
        let (end_tx, ended) = mpsc::channel();
        let mut streams = 0;
        if let Some(out) = child.stdout.take() {
            let sink = Arc::clone(&stdout);
            let end = end_tx.clone();
            streams += 1;
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    push_line(&sink, &line);
                    // Nobody waiting any more is fine: the line is kept in `sink`.
                    let _ = tx.send(line);
                }
                let _ = end.send(());
            });
        }
        if let Some(err) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            streams += 1;
            std::thread::spawn(move || {
                collect(err, &sink);
                let _ = end_tx.send(());
            });
        }
        Ok(Self {
            child,
            stdout_lines,
            stdout,
            stderr,
            ended,
            streams,
        })
    }

    /// The child's stdin, if the command piped it.
    pub fn stdin(&mut self) -> Option<&mut std::process::ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// Closes the child's stdin (end of input), if the command piped it.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for a stdout line that `pick` maps to a value. Fails, with everything the child printed,
    /// if the child closes its stdout first or the time runs out.
    pub fn wait_for_stdout<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout_lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(value) = pick(&line) {
                        return Ok(value);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no such line on stdout within {limit:?}\n{}",
                        self.output()
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "the child closed its stdout without such a line\n{}",
                        self.output()
                    ));
                }
            }
        }
    }

    /// Waits up to `limit` for the child to exit on its own, then a few seconds at most for the rest of its output,
    /// so that [`Spawned::stderr`] holds all of it (a process the child left behind may keep its pipes open).
    pub fn wait(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // A stream a grandchild keeps open would never end: a few seconds is plenty for the rest.
                    let drained = Instant::now() + Duration::from_secs(5);
                    while self.streams > 0 {
                        let left = drained.saturating_duration_since(Instant::now());
                        if self.ended.recv_timeout(left).is_err() {
                            break;
                        }
                        self.streams -= 1;
                    }
                    return Ok(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => {
                    return Err(format!(
                        "the child did not exit within {limit:?}\n{}",
                        self.output()
                    ));
                }
                Err(e) => return Err(format!("cannot wait for the child: {e}")),
            }
        }
    }

    /// Sends SIGTERM (what `kill`, container runtimes and service managers send) and waits up to `limit` for the
    /// child to exit; the child is killed when the time runs out, and the error says so.
    #[cfg(unix)]
    pub fn terminate(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| format!("cannot run kill: {e}"))?;
        if !sent.success() {
            return Err(format!("kill -TERM failed: {sent}"));
        }
        self.wait(limit).inspect_err(|_| {
            let _ = self.child.kill();
            let _ = self.child.wait();
        })
    }

    /// What the child printed on stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// What the child printed on stdout so far.
    pub fn stdout(&self) -> String {
        lock(&self.stdout).clone()
    }

    /// stdout and stderr so far, labelled, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(mut from: impl Read, sink: &Mutex<String>) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => lock(sink).push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}

fn push_line(sink: &Mutex<String>, line: &str) {
    let mut text = lock(sink);
    text.push_str(line);
    text.push('\n');
}

fn lock(text: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    // A reader thread cannot panic while holding the lock; recover the text if one ever did.
    text.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_never_comes_fails_at_the_deadline_with_the_output() {
        let mut child = Spawned::start(
            Command::new("sh").args(["-c", "echo starting; echo oops >&2; exec sleep 60"]),
        )
        .unwrap();
        let err = child
            .wait_for_stdout(Duration::from_millis(300), |line| {
                line.strip_prefix("listening on ").map(str::to_owned)
            })
            .unwrap_err();
        assert!(err.contains("within"), "{err}");
        assert!(err.contains("starting"), "{err}");
        let status = child.terminate(Duration::from_secs(10)).unwrap();
        assert!(!status.success());
        assert!(child.stderr().contains("oops"), "{}", child.output());
    }

    #[test]
    fn a_line_is_found_and_an_early_exit_is_reported() {
        let mut child =
            Spawned::start(Command::new("sh").args(["-c", "echo 'listening on x:1'; exit 3"]))
                .unwrap();
        let found = child
            .wait_for_stdout(Duration::from_secs(30), |line| {
                line.strip_prefix("listening on ").map(str::to_owned)
            })
            .unwrap();
        assert_eq!(found, "x:1");
        let err = child
            .wait_for_stdout(Duration::from_secs(30), |_| Some(()))
            .unwrap_err();
        assert!(err.contains("closed its stdout"), "{err}");
        assert_eq!(child.wait(Duration::from_secs(30)).unwrap().code(), Some(3));
    }

    #[test]
    fn a_child_that_ignores_sigterm_is_killed_at_the_deadline() {
        let mut child = Spawned::start(Command::new("sh").args([
            "-c",
            "trap '' TERM; echo ready; while true; do sleep 1; done",
        ]))
        .unwrap();
        child
            .wait_for_stdout(Duration::from_secs(30), |l| (l == "ready").then_some(()))
            .unwrap();
        let err = child.terminate(Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("did not exit"), "{err}");
        assert!(
            child.child.try_wait().unwrap().is_some(),
            "killed and reaped"
        );
    }
}
