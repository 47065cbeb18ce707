//! Resident memory of the long-lived processes, sampled from `/proc/<pid>/status` while the run goes on.
//!
//! Every role is killed and restarted during the run, so memory is judged per process (per pid): a process that
//! lived long enough to show a trend (a quarter of the run and at least eight samples) fails the run when the
//! median of its last quarter of samples is over twice the median of its first quarter. Warm-up (caches filling,
//! connection pools growing) stays well under that; a leak that keeps going does not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::procs::Role;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) role: Role,
    pub(crate) pid: u32,
    pub(crate) at: Duration,
    pub(crate) kib: u64,
}

/// One process's readings, summarized.
#[derive(Debug)]
pub(crate) struct Life {
    pub(crate) role: Role,
    pub(crate) pid: u32,
    pub(crate) lived: Duration,
    pub(crate) samples: usize,
    pub(crate) first_quarter: u64,
    pub(crate) last_quarter: u64,
    pub(crate) peak: u64,
}

impl Life {
    pub(crate) fn judged(&self, run: Duration) -> bool {
        self.samples >= 8 && self.lived >= run / 4
    }

    pub(crate) fn grew(&self) -> bool {
        self.last_quarter > 2 * self.first_quarter
    }
}

fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Each process's summary, by role then start time.
pub(crate) fn lives(samples: &[Sample]) -> Vec<Life> {
    let mut by_process: BTreeMap<(Role, u32), Vec<Sample>> = BTreeMap::new();
    for sample in samples {
        by_process
            .entry((sample.role, sample.pid))
            .or_default()
            .push(*sample);
    }
    let mut lives: Vec<Life> = by_process
        .into_iter()
        .map(|((role, pid), readings)| {
            let quarter = readings.len().div_ceil(4);
            let mut first: Vec<u64> = readings.iter().take(quarter).map(|s| s.kib).collect();
            let mut last: Vec<u64> = readings.iter().rev().take(quarter).map(|s| s.kib).collect();
            let lived = readings
                .last()
                .zip(readings.first())
                .map(|(l, f)| l.at.saturating_sub(f.at))
                .unwrap_or_default();
            Life {
                role,
                pid,
                lived,
                samples: readings.len(),
                first_quarter: median(&mut first),
                last_quarter: median(&mut last),
                peak: readings.iter().map(|s| s.kib).max().unwrap_or(0),
            }
        })
        .collect();
    lives.sort_by_key(|l| (l.role, std::cmp::Reverse(l.lived)));
    lives
}

/// The report: per role, every process that lived long enough to judge, and the peak over all of them.
pub(crate) fn report(lives: &[Life], run: Duration) -> String {
    let mut out = String::new();
    for role in Role::ALL {
        let of_role: Vec<&Life> = lives.iter().filter(|l| l.role == role).collect();
        let peak = of_role.iter().map(|l| l.peak).max().unwrap_or(0);
        let _ = writeln!(
            out,
            "  {role}: {} processes, peak {:.1} MiB",
            of_role.len(),
            mib(peak)
        );
        for life in of_role.iter().filter(|l| l.judged(run)) {
            let _ = writeln!(
                out,
                "    pid {} lived {:.0} s ({} samples): first-quarter median {:.1} MiB, last-quarter median {:.1} MiB{}",
                life.pid,
                life.lived.as_secs_f64(),
                life.samples,
                mib(life.first_quarter),
                mib(life.last_quarter),
                if life.grew() { "  <-- GREW" } else { "" }
            );
        }
    }
    out
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(kib: &[u64]) -> Vec<Sample> {
        kib.iter()
            .enumerate()
            .map(|(i, kib)| Sample {
                role: Role::Host,
                pid: 7,
                at: Duration::from_secs(i as u64),
                kib: *kib,
            })
            .collect()
    }

    #[test]
    fn warm_up_is_not_growth_and_a_steady_climb_is() {
        let warm = lives(&samples(&[10, 14, 16, 16, 17, 16, 17, 16]));
        assert!(!warm[0].grew());
        let leak = lives(&samples(&[10, 12, 15, 18, 22, 26, 30, 34]));
        assert!(leak[0].grew());
        assert!(leak[0].judged(Duration::from_secs(20)));
        assert!(!leak[0].judged(Duration::from_secs(60)));
    }
}
