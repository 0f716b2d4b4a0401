//! An idle run: open many visitor connections, hold them, and weigh what
//! they cost the relay in resident memory.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, Idle};
use crate::error::BenchError;
use crate::ledger::Ids;
use crate::phase::{self, Phase};
use crate::progress::{progress, wait_connected};
use crate::report::{IdleFigures, Recorder, Report, Wanted};
use crate::visitor;

pub async fn run(config: &Config, idle: &Idle) -> Result<Report, BenchError> {
    let (ws_visitors, longpoll_visitors) = visitor::wanted(config, idle.visitors);
    let relay_rss = || idle.relay_pid.map(rss_kib).transpose();
    let before = relay_rss()?;
    let bench_before = rss_kib(std::process::id()).ok();

    // Idle visitors send nothing, so no message ids are ever made.
    let recorder = Arc::new(Recorder::new(Ids::new(String::new()), false));
    let (phase_tx, phase) = watch::channel(Phase::Connecting);
    let mut tasks = JoinSet::new();
    let connecting = Instant::now();
    let shared = recorder.clone();
    visitor::spawn_all(
        &mut tasks,
        config,
        (0..idle.visitors, config.longpoll_share),
        &recorder,
        move |ws, _| visitor::hold(ws, shared.clone(), phase.clone()),
    );
    wait_connected(config, &recorder, ws_visitors + longpoll_visitors).await;
    let connect_seconds = connecting.elapsed().as_secs_f64();
    let connected = relay_rss()?;
    progress(
        config,
        format_args!(
            "connected in {connect_seconds:.1} s; holding for {:.1} s",
            idle.hold.as_secs_f64()
        ),
    );

    let held = Instant::now();
    tokio::time::sleep(idle.hold).await;
    let hold_seconds = held.elapsed().as_secs_f64();
    let end = relay_rss()?;
    let bench = rss_kib(std::process::id()).ok();
    phase::stop(phase_tx, tasks).await;

    let wanted = Wanted {
        visitors: ws_visitors,
        longpoll: longpoll_visitors,
        agents: 0,
    };
    let mut report = recorder.report("idle", config.shard.to_string(), wanted);
    report.connect_seconds = connect_seconds;
    let established = report.visitors.established + report.longpoll.established;
    let per_connection = |total: Option<u64>, base: u64| {
        total.map(|total| total.saturating_sub(base) as f64 / f64::from(established.max(1)))
    };
    report.idle = Some(IdleFigures {
        hold_seconds,
        relay_pid: idle.relay_pid,
        relay_rss_before_kib: before,
        relay_rss_connected_kib: connected,
        relay_rss_end_kib: end,
        relay_kib_per_connection: before.and_then(|before| per_connection(end, before)),
        bench_rss_kib: bench,
        bench_kib_per_connection: bench_before.and_then(|before| per_connection(bench, before)),
    });
    Ok(report)
}

/// Resident memory of a process in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|source| BenchError::Rss {
        pid,
        source: Some(source),
    })?;
    parse_rss(&status).ok_or(BenchError::Rss { pid, source: None })
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let kib = fields.next()?.parse().ok()?;
    (fields.next() == Some("kB")).then_some(kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read_from_proc_status() {
        let status = "Name:\tkefu-relay\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_rss(status), Some(12345));
        assert_eq!(parse_rss("Name:\tx\n"), None);
        assert!(rss_kib(std::process::id()).expect("own status") > 0);
    }
}
