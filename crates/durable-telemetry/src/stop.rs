//! The stop request every long-running binary of the project waits for: Ctrl-C, or SIGTERM (what `kill`, container
//! runtimes, service managers and the Functions host send).

use std::io;

/// Listens for a stop request from outside the process from the moment it is made.
///
/// A signal that arrives before [`StopSignal::recv`] is awaited, or while the program is busy between two awaits
/// (starting a host, printing where it listens), is kept and ends the next `recv` at once. Waiting on a fresh
/// `tokio::signal` future at each step instead loses such a signal: after the first listener is made the process no
/// longer dies of SIGTERM, and a signal with no listener at that moment is dropped, so the process would run on.
///
/// Make it first, before the work that a stop request should interrupt:
///
/// ```no_run
/// # async fn start_server() {}
/// # async fn run() -> std::io::Result<()> {
/// let mut stop = durable_telemetry::StopSignal::listen()?;
/// tokio::select! {
///     () = start_server() => {}
///     () = stop.recv() => return Ok(()),
/// }
/// println!("listening");
/// stop.recv().await; // a SIGTERM sent right after the line above is not lost
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct StopSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(windows)]
    ctrl_c: tokio::signal::windows::CtrlC,
}

impl StopSignal {
    /// Starts listening for Ctrl-C and SIGTERM. Must be called inside a Tokio runtime.
    ///
    /// Fails only if the operating system refuses a signal handler.
    pub fn listen() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(windows)]
        {
            Ok(Self {
                ctrl_c: tokio::signal::windows::ctrl_c()?,
            })
        }
    }

    /// Waits for the next stop request, or returns at once if one arrived since the last call (or since
    /// [`StopSignal::listen`]).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(windows)]
        {
            self.ctrl_c.recv().await;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_sent_before_anyone_waits_is_kept() {
        let mut stop = StopSignal::listen().unwrap();
        // SIGTERM to this very process: with the listener in place it is recorded, not fatal.
        send_sigterm_to_this_process();
        tokio::time::timeout(std::time::Duration::from_secs(30), stop.recv())
            .await
            .expect("the SIGTERM sent before recv was lost");
    }

    fn send_sigterm_to_this_process() {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
