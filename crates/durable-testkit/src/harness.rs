//! A runner for test binaries with their own `main` (`[[test]] harness = false`).
//!
//! Some test binaries must decide what they are before the standard harness starts threads: one that is also the
//! custom handler its tests run (started again by the host with a variable set), or one that sets process-wide
//! environment first. [`run`] gives them what `cargo test` expects of a test binary: name filters, `--exact`,
//! `--skip`, `--list`, `--ignored`, one `test NAME ... ok` line per test, a summary, and a failing exit status
//! when a test panics. Tests run one after the other; each is a plain function that panics on failure.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Mutex;

/// The test [`run`] is running, for messages written from inside it (the standard harness names its threads
/// after the tests instead).
static CURRENT: Mutex<Option<&'static str>> = Mutex::new(None);

/// The name of the test [`run`] is running, if any.
pub(crate) fn current() -> Option<&'static str> {
    *CURRENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn set_current(name: Option<&'static str>) {
    *CURRENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = name;
}

/// One test: its name as `cargo test` shows and filters it, and its body.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    /// The name filters match against.
    pub name: &'static str,
    /// The body; a panic fails the test.
    pub run: fn(),
}

impl Test {
    /// A test named `name` whose body is `run`.
    pub const fn new(name: &'static str, run: fn()) -> Self {
        Test { name, run }
    }
}

/// What the command line asks for.
#[derive(Debug, Default)]
struct Selection {
    filters: Vec<String>,
    skips: Vec<String>,
    exact: bool,
    list: bool,
    ignored_only: bool,
}

impl Selection {
    fn parse(args: impl IntoIterator<Item = String>) -> Self {
        let mut selection = Selection::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--exact" => selection.exact = true,
                "--list" => selection.list = true,
                "--ignored" => selection.ignored_only = true,
                "--skip" => selection.skips.extend(args.next()),
                // Flags of the standard harness that take a value: the value is not a filter.
                "--test-threads" | "--color" | "--format" | "--logfile" | "-Z"
                | "--shuffle-seed" => {
                    args.next();
                }
                flag if flag.starts_with('-') => {}
                filter => selection.filters.push(filter.to_owned()),
            }
        }
        selection
    }

    fn matches(&self, name: &str, pattern: &str) -> bool {
        if self.exact {
            name == pattern
        } else {
            name.contains(pattern)
        }
    }

    fn selects(&self, name: &str) -> bool {
        // None of these tests is ignored, so `--ignored` selects nothing.
        !self.ignored_only
            && (self.filters.is_empty() || self.filters.iter().any(|f| self.matches(name, f)))
            && !self.skips.iter().any(|s| self.matches(name, s))
    }
}

/// Runs an async test body on a runtime of its own, as `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`
/// would, and fails the test (panics) with the error it returns.
pub fn block_on<E: std::fmt::Debug>(test: impl Future<Output = Result<(), E>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the test");
    if let Err(e) = runtime.block_on(test) {
        panic!("{e:?}");
    }
}

/// Runs the tests the command line selects and reports as the standard harness does.
pub fn run(tests: &[Test]) -> ExitCode {
    let selection = Selection::parse(std::env::args().skip(1));
    let chosen: Vec<&Test> = tests.iter().filter(|t| selection.selects(t.name)).collect();
    let mut out = std::io::stdout();
    if selection.list {
        for test in &chosen {
            let _ = writeln!(out, "{}: test", test.name);
        }
        return ExitCode::SUCCESS;
    }
    let filtered = tests.len() - chosen.len();
    let _ = writeln!(
        out,
        "\nrunning {} test{}",
        chosen.len(),
        if chosen.len() == 1 { "" } else { "s" }
    );
    let mut failed = Vec::new();
    for test in &chosen {
        let _ = out.flush();
        set_current(Some(test.name));
        let outcome = std::panic::catch_unwind(test.run);
        set_current(None);
        let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
        let _ = writeln!(out, "test {} ... {verdict}", test.name);
        if outcome.is_err() {
            failed.push(test.name);
        }
    }
    if !failed.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for name in &failed {
            let _ = writeln!(out, "    {name}");
        }
    }
    let _ = writeln!(
        out,
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {filtered} filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len(),
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Selection {
        Selection::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn filters_select_as_the_standard_harness_does() {
        assert!(parse(&[]).selects("entity_calls"));
        assert!(parse(&["entity"]).selects("entity_calls"));
        assert!(!parse(&["session"]).selects("entity_calls"));
        assert!(!parse(&["--exact", "entity"]).selects("entity_calls"));
        assert!(parse(&["--exact", "entity_calls"]).selects("entity_calls"));
        assert!(!parse(&["--skip", "calls"]).selects("entity_calls"));
        assert!(!parse(&["--ignored"]).selects("entity_calls"));
        // A flag's value is not a filter.
        assert!(parse(&["--test-threads", "1", "--format", "terse"]).selects("entity_calls"));
    }
}
