//! The benchmark's modes: A/B throughput against a baseline build, growth against a seeded store, one-at-a-time
//! latency and the entity scenario. Each prints a table and, where two things were compared, their ratio.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::machine::{self, Cpu};
use super::{Case, STEPS, WORK_ITEMS_PER_ORCHESTRATION, percentile, run_case};

/// What every case of one invocation shares.
pub(crate) struct Plan<'a> {
    pub(crate) n: usize,
    pub(crate) sync: &'a str,
    pub(crate) python: &'a PathBuf,
    pub(crate) dir: Option<&'a PathBuf>,
    pub(crate) rounds: usize,
    pub(crate) runtime: &'a tokio::runtime::Runtime,
    pub(crate) commit_batch: Option<usize>,
    /// The workload's input size in bytes (`--payload`; 0: none).
    pub(crate) payload: usize,
    /// (worker, this / baseline) per round.
    pub(crate) ratios: Vec<(String, f64)>,
}

impl Plan<'_> {
    pub(crate) fn case<'b>(
        &'b self,
        worker: &'b str,
        exe: &'b PathBuf,
        db: Option<&'b Path>,
        n: usize,
        k: usize,
    ) -> Case<'b> {
        Case {
            worker,
            n,
            sync: self.sync,
            python: self.python,
            backend_exe: exe,
            dir: self.dir,
            db,
            one_at_a_time: k,
            commit_batch: self.commit_batch,
            entity: None,
            fan_out: None,
            payload: self.payload,
        }
    }

    pub(crate) fn header(&self) {
        println!(
            "workload: {} orchestrations x {} sequential no-op activities, synchronous={}{}",
            self.n,
            STEPS.len(),
            self.sync,
            if self.payload > 0 {
                format!(
                    ", an input of {} bytes carried through each activity",
                    self.payload
                )
            } else {
                String::new()
            }
        );
        println!(
            "| backend | worker | orchestrations/s | work items/s | p50 latency | p99 latency | backend peak RSS | \
             backend CPU per item (user + sys) | of it: writer thread | worker CPU per item | load after |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
    }

    /// Runs the workload once and prints its row; returns (work items/s, backend CPU us per item).
    pub(crate) fn row(&self, label: &str, worker: &str, case: &Case<'_>) -> Result<(f64, f64)> {
        let r = self.runtime.block_on(run_case(case))?;
        let items = (self.n * WORK_ITEMS_PER_ORCHESTRATION) as f64;
        let per_item = |s: f64| s * 1e6 / items;
        let split = |c: Cpu| {
            format!(
                "{:.0} us ({:.0} + {:.0})",
                per_item(c.total()),
                per_item(c.user),
                per_item(c.system)
            )
        };
        let writer = r.writer_cpu();
        println!(
            "| {label} | {worker} | {:.0} | {:.0} | {:.0} ms | {:.0} ms | {} | {} | {} | {} | {} |",
            self.n as f64 / r.seconds,
            items / r.seconds,
            r.p50_ms,
            r.p99_ms,
            r.backend_rss_mib
                .map_or("n/a".to_owned(), |m| format!("{m:.1} MiB")),
            r.backend_cpu.map_or("n/a".to_owned(), split),
            writer.map_or("n/a".to_owned(), split),
            r.worker_cpu.map_or("n/a".to_owned(), |c| format!(
                "{:.0} us",
                per_item(c.total())
            )),
            machine::load_average(),
        );
        let threads: Vec<String> = r
            .backend_threads
            .iter()
            .filter(|(_, cpu)| cpu.total() > 0.0)
            .map(|(name, cpu)| format!("{name} {:.0} us", per_item(cpu.total())))
            .collect();
        let writes = r.backend_writes.map_or("n/a".to_owned(), |(bytes, calls)| {
            format!(
                "{:.1} KiB in {:.1} write calls",
                bytes / items / 1024.0,
                calls / items
            )
        });
        eprintln!(
            "  {label}: backend threads per item: {}; backend writes per item: {writes}",
            threads.join(", ")
        );
        Ok((
            items / r.seconds,
            r.backend_cpu.map_or(f64::NAN, |c| per_item(c.total())),
        ))
    }

    /// Each round runs every worker against each backend build in turn; prints this build / baseline.
    pub(crate) fn throughput_ab(
        &mut self,
        workers: &[String],
        backends: &[(String, Option<&Path>, PathBuf)],
    ) -> Result<()> {
        self.header();
        for _ in 0..self.rounds {
            for worker in workers {
                let mut cpu = Vec::new();
                for (label, db, exe) in backends {
                    let case = self.case(worker, exe, *db, self.n, 0);
                    cpu.push(self.row(label, worker, &case)?.1);
                }
                if let [base, this] = cpu[..] {
                    self.ratios.push((worker.clone(), this / base));
                }
            }
        }
        self.print_ratios(workers, "backend CPU per item, this build / baseline");
        Ok(())
    }

    /// Each round runs every worker against an empty store and a seeded one (this build); prints the ratio of
    /// throughput, seeded / empty.
    pub(crate) fn throughput(
        &mut self,
        workers: &[String],
        exe: &PathBuf,
        stores: &[(String, Option<&Path>)],
    ) -> Result<()> {
        self.header();
        for _ in 0..self.rounds {
            for worker in workers {
                let mut results = Vec::new();
                for (label, db) in stores {
                    let case = self.case(worker, exe, *db, self.n, 0);
                    results.push(self.row(label, worker, &case)?);
                }
                if let [empty, seeded] = results[..] {
                    self.ratios.push((worker.clone(), seeded.0 / empty.0));
                    // Kept apart under another key: CPU per item moves far less with the machine's load.
                    self.ratios
                        .push((format!("{worker} cpu"), seeded.1 / empty.1));
                }
            }
        }
        self.print_ratios(workers, "work items/s, seeded store / empty store");
        let cpu: Vec<String> = workers.iter().map(|w| format!("{w} cpu")).collect();
        self.print_ratios(&cpu, "backend CPU per item, seeded store / empty store");
        Ok(())
    }

    /// Each round starts a backend on each store and runs `k` orchestrations one at a time (Rust worker).
    pub(crate) fn latency(
        &mut self,
        exe: &PathBuf,
        stores: &[(String, Option<&Path>)],
        k: usize,
    ) -> Result<()> {
        println!(
            "one orchestration of {} sequential no-op activities at a time, {k} per backend start, synchronous={}",
            STEPS.len(),
            self.sync
        );
        println!(
            "| store | backend start (open + recovery) | p50 | p90 | max | backend peak RSS | load after |"
        );
        println!("|---|---|---|---|---|---|---|");
        for _ in 0..self.rounds {
            let mut p50s = Vec::new();
            for (label, db) in stores {
                let case = self.case("rust", exe, *db, 0, k);
                let r = self.runtime.block_on(run_case(&case))?;
                let t = &r.one_at_a_time_ms;
                println!(
                    "| {label} | {:.0} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |",
                    r.startup_ms,
                    percentile(t, 0.5),
                    percentile(t, 0.9),
                    percentile(t, 1.0),
                    r.backend_rss_mib
                        .map_or("n/a".to_owned(), |m| format!("{m:.1} MiB")),
                    machine::load_average(),
                );
                p50s.push(percentile(t, 0.5));
            }
            if let [empty, seeded] = p50s[..] {
                self.ratios.push(("rust".to_owned(), seeded / empty));
            }
        }
        self.print_ratios(
            &["rust".to_owned()],
            "p50 end-to-end, seeded store / empty store",
        );
        Ok(())
    }

    /// Each round: one entity, `senders` orchestrations signalling it `per_sender` times each (Rust worker),
    /// against each backend build in turn; with a baseline, the last lines give this build / baseline per round.
    pub(crate) fn entity(
        &mut self,
        backends: &[(String, Option<&Path>, PathBuf)],
        senders: usize,
        per_sender: i64,
    ) -> Result<()> {
        println!(
            "one entity receiving {per_sender} signals from each of {senders} orchestrations, synchronous={}",
            self.sync
        );
        println!(
            "| run | backend | operations | out of sender order | seconds | operations/s | backend CPU per operation | load after |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let mut ratios = Vec::new();
        for round in 0..self.rounds {
            // (operations/s, CPU seconds per operation) of each backend, in the order given.
            let mut measured = Vec::new();
            for (label, _, exe) in backends {
                let mut case = self.case("rust", exe, None, 0, 0);
                case.entity = Some((senders, per_sender));
                let r = self.runtime.block_on(run_case(&case))?;
                let (seconds, ops, out_of_order) = r.entity.context("no entity result")?;
                let cpu = r.backend_cpu.map(|c| c.total() / ops as f64);
                println!(
                    "| {} | {label} | {ops} | {out_of_order} | {seconds:.2} | {:.0} | {} | {} |",
                    round + 1,
                    ops as f64 / seconds,
                    cpu.map_or("n/a".to_owned(), |c| format!("{:.0} us", c * 1e6)),
                    machine::load_average(),
                );
                measured.push((ops as f64 / seconds, cpu));
            }
            if let [(base_rate, base_cpu), (rate, cpu)] = measured[..] {
                ratios.push((rate / base_rate, cpu.zip(base_cpu).map(|(c, b)| c / b)));
            }
        }
        for (round, (rate, cpu)) in ratios.iter().enumerate() {
            println!(
                "round {}: this build / baseline: operations/s {rate:.2}, backend CPU per operation {}",
                round + 1,
                cpu.map_or("n/a".to_owned(), |c| format!("{c:.2}"))
            );
        }
        Ok(())
    }

    /// Each round runs `count` fan-outs of `width` activities (and the workload beside them, if any) against
    /// each backend build in turn; prints the ratio of backend CPU and of the fan-outs' wall time.
    pub(crate) fn fan_out_ab(
        &mut self,
        backends: &[(String, Option<&Path>, PathBuf)],
        width: usize,
        count: usize,
    ) -> Result<()> {
        println!(
            "{count} orchestration(s) of {width} activities scheduled at once, waited for with when_all; beside \
             them {} orchestrations x {} sequential activities; Rust worker, synchronous={}",
            self.n,
            STEPS.len(),
            self.sync
        );
        println!(
            "| backend | fan-out wall time | workload wall time | backend CPU (user + sys) | of it: writer thread | \
             worker CPU | load after |"
        );
        println!("|---|---|---|---|---|---|---|");
        let secs = |c: Option<Cpu>| {
            c.map_or("n/a".to_owned(), |c| {
                format!("{:.2} s ({:.2} + {:.2})", c.total(), c.user, c.system)
            })
        };
        for _ in 0..self.rounds {
            let mut results = Vec::new();
            for (label, db, exe) in backends {
                let mut case = self.case("rust", exe, *db, self.n, 0);
                case.fan_out = Some((width, count));
                let r = self.runtime.block_on(run_case(&case))?;
                let writer = r.writer_cpu();
                let fan_in = r.fan_in.context("no fan-out result")?;
                println!(
                    "| {label} | {:.2} s | {} | {} | {} | {} | {} |",
                    fan_in.fan_out_seconds,
                    if fan_in.workload_seconds.is_nan() {
                        "-".to_owned()
                    } else {
                        format!("{:.2} s", fan_in.workload_seconds)
                    },
                    secs(r.backend_cpu),
                    secs(writer),
                    secs(r.worker_cpu),
                    machine::load_average(),
                );
                results.push((
                    fan_in.fan_out_seconds,
                    r.backend_cpu.map_or(f64::NAN, |c| c.total()),
                ));
            }
            if let [base, this] = results[..] {
                self.ratios
                    .push(("fan-out wall".to_owned(), this.0 / base.0));
                self.ratios
                    .push(("fan-out cpu".to_owned(), this.1 / base.1));
            }
        }
        self.print_ratios(
            &["fan-out wall".to_owned(), "fan-out cpu".to_owned()],
            "this build / baseline",
        );
        Ok(())
    }

    pub(crate) fn print_ratios(&self, workers: &[String], what: &str) {
        for worker in workers {
            let mut r: Vec<f64> = self
                .ratios
                .iter()
                .filter(|(w, _)| w == worker)
                .map(|(_, r)| *r)
                .collect();
            if r.is_empty() {
                continue;
            }
            let each: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
            r.sort_by(f64::total_cmp);
            println!(
                "{what}, {worker} worker: median {:.2} (rounds: {})",
                r[r.len() / 2],
                each.join(", ")
            );
        }
    }
}
