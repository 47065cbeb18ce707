//! What makes two benchmark runs comparable (Linux, from `/proc`): the machine, its load, the filesystem and fsync
//! floor where a database lives, and the CPU a process (and each kind of its threads) spent, split into user and
//! system time. Shared by the workspace's benchmarks.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Clock ticks per second of `/proc/*/stat` times (`USER_HZ`, 100 on every Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// The facts printed above every result table.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// The cores this process may use.
    pub cores: usize,
    /// The kernel's release.
    pub kernel: String,
}

impl Machine {
    /// Reads the facts; what cannot be read is "unknown".
    pub fn read() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Machine {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            kernel,
        }
    }
}

/// The 1-, 5- and 15-minute load averages as the kernel prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The filesystem type (and device) of the mount holding `path`: the longest mount point that is a prefix of it.
pub fn filesystem_of(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return "unknown".to_owned();
    };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return "unknown".to_owned();
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let point = fields.next()?.replace("\\040", " ");
            let kind = fields.next()?;
            path.starts_with(&point)
                .then(|| (point.len(), format!("{kind} ({device} on {point})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_owned(), |(_, s)| s)
}

/// The time of one small write made durable (`write` + `fdatasync`) in `dir`: the median and the minimum of
/// `rounds` tries, in milliseconds. A commit at `synchronous=FULL` in WAL mode costs at least one of these.
pub fn fsync_floor(dir: &Path, rounds: usize) -> std::io::Result<(f64, f64)> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [7u8; 4096];
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}

/// User and system CPU seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// User time.
    pub user: f64,
    /// System time.
    pub system: f64,
}

impl Cpu {
    /// User plus system time.
    pub fn total(self) -> f64 {
        self.user + self.system
    }

    /// The CPU spent since `before`.
    pub fn minus(self, before: Cpu) -> Cpu {
        Cpu {
            user: self.user - before.user,
            system: self.system - before.system,
        }
    }
}

/// `(command name, utime, stime)` of one `/proc/.../stat` file.
fn parse_stat(stat: &str) -> Option<(String, Cpu)> {
    // The command name may hold spaces and parentheses; the fields after its last closing parenthesis do not.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((
        name,
        Cpu {
            user: ticks(11)? / TICKS_PER_SECOND,
            system: ticks(12)? / TICKS_PER_SECOND,
        },
    ))
}

/// CPU of a whole process (all its threads, live and exited).
pub fn process_cpu(pid: u32) -> Option<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|(_, cpu)| cpu)
}

/// CPU of a process's live threads, summed by thread name: the store's writer and reader threads have names of
/// their own, the gRPC runtime's threads share tokio's.
pub fn thread_cpu(pid: u32) -> Vec<(String, Cpu)> {
    let mut out: Vec<(String, Cpu)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((name, cpu)) = parse_stat(&stat) else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, sum)) => {
                sum.user += cpu.user;
                sum.system += cpu.system;
            }
            None => out.push((name, cpu)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `after - before` per thread name (names missing before count from zero).
pub fn thread_delta(before: &[(String, Cpu)], after: &[(String, Cpu)]) -> Vec<(String, Cpu)> {
    after
        .iter()
        .map(|(name, cpu)| {
            let earlier = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or_else(Cpu::default, |(_, c)| *c);
            (name.clone(), cpu.minus(earlier))
        })
        .collect()
}

/// Bytes a process wrote through `write`-family calls and the number of those calls (`/proc/PID/io`): for the
/// backend that is mostly WAL frames, so it shows how many pages each work item dirties.
pub fn process_writes(pid: u32) -> Option<(f64, f64)> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some((field("wchar:")?, field("syscw:")?))
}
