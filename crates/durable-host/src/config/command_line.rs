//! How the Functions host turns `customHandler.description` into a process: which file it runs and which
//! arguments the handler really receives.
//!
//! The host does not pass the `arguments` array through as is. It expands `%NAME%` from its environment, drops
//! any `%NAME%` left unexpanded, joins everything into one command-line string and lets .NET split it again
//! (`Azure/azure-functions-host src/WebJobs.Script/Workers/ProcessManagement/DefaultWorkerProcessFactory.cs`,
//! `dotnet/runtime src/libraries/System.Diagnostics.Process/src/System/Diagnostics/Process.Unix.cs`
//! `ParseArgumentsIntoList`). So `["my app.py"]` reaches the handler as two arguments, in Azure and here alike.

use std::path::{Path, PathBuf};

/// `Environment.ExpandEnvironmentVariables`: each `%NAME%` whose name is set is replaced by its value; the
/// others are left as they are.
pub(crate) fn expand_variables(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut last = 0;
    // Mirrors the .NET loop: `last` sits on a `%` (or at the start), `pos` is the next `%` after it.
    while let Some(first) = text[last..].chars().next() {
        let from = last + first.len_utf8();
        let Some(offset) = text[from..].find('%') else {
            break;
        };
        let pos = from + offset;
        if text[last..].starts_with('%')
            && let Some(value) = lookup(&text[last + 1..pos])
        {
            out.push_str(&value);
            last = pos + 1;
            continue;
        }
        out.push_str(&text[last..pos]);
        last = pos;
    }
    out.push_str(&text[last..]);
    out
}

/// `SanitizeExpandedArgument`: a `%NAME%` still in an argument after expansion names a variable that is not set,
/// and the host removes it (with a warning). Returns the argument and the names removed.
pub(crate) fn remove_unset(argument: &str) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut removed = Vec::new();
    let mut rest = argument;
    // The host's pattern is `%(.+?)%`: a lazy match of at least one character between two `%`.
    while let Some(start) = rest.find('%') {
        let after = &rest[start + 1..];
        let first = after.chars().next().map_or(0, char::len_utf8);
        match after[first..].find('%').filter(|_| first > 0) {
            Some(end) => {
                let name_len = first + end;
                out.push_str(&rest[..start]);
                removed.push(after[..name_len].to_owned());
                rest = &after[name_len + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    (out, removed)
}

/// `ParseArgumentsIntoList` (the C runtime's rules): whitespace separates arguments, double quotes group,
/// backslashes escape only a following double quote, and `""` inside quotes is a literal quote.
pub(crate) fn split_arguments(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut results = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && matches!(chars[i], ' ' | '\t') {
            i += 1;
        }
        if i == chars.len() {
            break;
        }
        let mut current = String::new();
        let mut in_quotes = false;
        while i < chars.len() {
            let mut backslashes = 0;
            while i < chars.len() && chars[i] == '\\' {
                i += 1;
                backslashes += 1;
            }
            if backslashes > 0 {
                if i >= chars.len() || chars[i] != '"' {
                    current.extend(std::iter::repeat_n('\\', backslashes));
                } else {
                    current.extend(std::iter::repeat_n('\\', backslashes / 2));
                    if backslashes % 2 != 0 {
                        current.push('"');
                        i += 1;
                    }
                }
                continue;
            }
            let c = chars[i];
            if c == '"' {
                if in_quotes && chars.get(i + 1) == Some(&'"') {
                    current.push('"');
                    i += 1;
                } else {
                    in_quotes = !in_quotes;
                }
                i += 1;
                continue;
            }
            if matches!(c, ' ' | '\t') && !in_quotes {
                break;
            }
            current.push(c);
            i += 1;
        }
        results.push(current);
        // The outer loop of the original advances past the separator that ended the argument.
        i += 1;
    }
    results
}

/// The arguments the handler receives: `arguments`, then `defaultWorkerPath` in quotes, then `workerArguments`,
/// each expanded and sanitized, joined and split again. Also returns the unset variable names that were dropped.
pub(crate) fn handler_arguments(
    arguments: &[String],
    worker_path: Option<&str>,
    worker_arguments: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let mut line = String::new();
    let mut dropped = Vec::new();
    let mut merge = |line: &mut String, argument: &str| {
        let (clean, removed) = remove_unset(&expand_variables(argument, &lookup));
        dropped.extend(removed);
        line.push(' ');
        line.push_str(&clean);
    };
    for argument in arguments {
        merge(&mut line, argument);
    }
    if let Some(path) = worker_path.filter(|p| !p.is_empty()) {
        line.push_str(&format!(" \"{path}\""));
    }
    for argument in worker_arguments {
        merge(&mut line, argument);
    }
    (split_arguments(&line), dropped)
}

/// `HttpWorkerDescription.ApplyDefaultsAndValidate`: a relative `defaultExecutablePath` is taken from the worker
/// directory (`workerDirectory`, by default the app root; not `workingDirectory`) when that file exists there;
/// otherwise a bare name is left for the OS to find on `PATH`.
pub(crate) fn resolve_executable(executable: &str, worker_dir: &Path) -> PathBuf {
    let path = Path::new(executable);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let candidate = worker_dir.join(path);
    if candidate.is_file() || path.components().count() > 1 {
        // A relative path that is not there is still taken from the app root (where `func start` runs), so the
        // error names the file that is missing instead of a PATH lookup.
        candidate
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME_DIR" => Some("/home/me".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_as_dotnet_does() {
        assert_eq!(expand_variables("%HOME_DIR%/bin", env), "/home/me/bin");
        assert_eq!(expand_variables("a%EMPTY%b", env), "ab");
        assert_eq!(expand_variables("%NOPE%/x", env), "%NOPE%/x");
        assert_eq!(
            expand_variables("%NOPE%HOME_DIR%", env),
            "%NOPE/home/me",
            "the closing % of an unknown name may open the next one"
        );
        assert_eq!(expand_variables("100%", env), "100%");
        assert_eq!(expand_variables("%", env), "%");
        assert_eq!(expand_variables("", env), "");
        assert_eq!(expand_variables("é%HOME_DIR%ü", env), "é/home/meü");
    }

    #[test]
    fn unset_variables_are_removed_from_arguments() {
        assert_eq!(
            remove_unset("--port=%FUNCTIONS_CUSTOMHANDLER_PORT%"),
            (
                "--port=".to_owned(),
                vec!["FUNCTIONS_CUSTOMHANDLER_PORT".to_owned()]
            )
        );
        assert_eq!(remove_unset("100%"), ("100%".to_owned(), vec![]));
        assert_eq!(
            remove_unset("a%é%b"),
            ("ab".to_owned(), vec!["é".to_owned()])
        );
        assert_eq!(remove_unset("%%"), ("%%".to_owned(), vec![]));
        assert_eq!(remove_unset("%%a%"), (String::new(), vec!["%a".to_owned()]));
    }

    #[test]
    fn the_command_line_is_split_again() {
        assert_eq!(split_arguments(" a  b\tc "), ["a", "b", "c"]);
        assert_eq!(split_arguments(r#""my app.py" x"#), ["my app.py", "x"]);
        assert_eq!(
            split_arguments(r#"a\\b \"q\" \\"x y""#),
            [r"a\\b", "\"q\"", r"\x y"]
        );
        assert_eq!(split_arguments(r#""say ""hi""""#), [r#"say "hi""#]);
        assert!(split_arguments("  ").is_empty());
    }

    #[test]
    fn arguments_reach_the_handler_as_the_host_passes_them() {
        let args = |a: &[&str], worker: Option<&str>, rest: &[&str]| {
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            handler_arguments(&a, worker, &rest, env)
        };
        assert_eq!(
            args(&["serve", "--home", "%HOME_DIR%"], None, &[]).0,
            ["serve", "--home", "/home/me"]
        );
        // Spaces split, an unset variable leaves nothing, an empty argument disappears.
        let (argv, dropped) = args(&["my app.py", "%NOPE%", ""], None, &[]);
        assert_eq!(argv, ["my", "app.py"]);
        assert_eq!(dropped, ["NOPE"]);
        assert_eq!(
            args(&["-u"], Some("worker dir/main.py"), &["--x"]).0,
            ["-u", "worker dir/main.py", "--x"]
        );
    }

    #[test]
    fn executables_are_found_like_the_host_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("handler"), b"").unwrap();
        assert_eq!(
            resolve_executable("handler", dir.path()),
            dir.path().join("handler")
        );
        assert_eq!(
            resolve_executable("python3", dir.path()),
            Path::new("python3")
        );
        assert_eq!(
            resolve_executable("bin/handler", dir.path()),
            dir.path().join("bin/handler")
        );
        assert_eq!(
            resolve_executable("/usr/bin/env", dir.path()),
            Path::new("/usr/bin/env")
        );
    }
}
