//! A chat run: agents sign in, visitors connect, visitors send at the asked
//! rate while agents claim and answer (and, if asked, uploaders upload and
//! attackers attack), then the run drains and stops.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::agent::{self, Duty};
use crate::attack;
use crate::config::{Chat, Config};
use crate::error::BenchError;
use crate::ledger::Ids;
use crate::net::Sources;
use crate::phase::{self, Phase};
use crate::progress::{progress, wait_connected};
use crate::report::{ChatFigures, Recorder, Report, Side, Wanted};
use crate::tally::{Attacks, Uploads};
use crate::traffic::Schedule;
use crate::upload::Uploader;
use crate::visitor;

/// Between the last connection and the first send, so that every visitor
/// task is waiting when sending starts.
const SETTLE: Duration = Duration::from_millis(200);
/// How often the drain looks whether everything arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);

pub async fn run(config: &Config, chat: &Chat) -> Result<Report, BenchError> {
    let shard = config.shard;
    let agents_total = u32::try_from(chat.tokens.len()).unwrap_or(u32::MAX);
    let agents: Vec<u32> = shard.members(agents_total).collect();
    let (ws_visitors, longpoll_visitors) = visitor::wanted(config, chat.visitors);
    let visitors = ws_visitors + longpoll_visitors;
    if visitors > 0 && agents.is_empty() {
        return Err(BenchError::NoAgents { shard });
    }
    let recorder = Arc::new(Recorder::new(run_ids(config), chat.drop_one_for_test));
    let (phase_tx, phase) = watch::channel(Phase::Connecting);
    let mut tasks = JoinSet::new();
    let connecting = Instant::now();

    // Agents first, so that visitors find them online and are not told of
    // each one arriving.
    let sources = Sources::new(config.source_addrs);
    let slots = u32::try_from(agents.len()).unwrap_or(u32::MAX);
    for (slot, global) in (0..).zip(&agents) {
        let target = config.relays.for_agent(*global);
        let source = sources.for_connection(target.addr, *global);
        let token = &chat.tokens[*global as usize];
        match agent::connect(target, source, token).await {
            Ok(ws) => {
                recorder.connected(Side::Agent);
                let duty = Duty {
                    shard,
                    slot,
                    slots,
                    reply_every: chat.reply_every,
                };
                tasks.spawn(agent::chat(ws, duty, recorder.clone(), phase.clone()));
            }
            Err(error) => recorder.failed(Side::Agent, error.label()),
        }
    }

    let rate = chat.rate / f64::from(shard.count);
    let until = chat.duration;
    let (shared, watch) = (recorder.clone(), phase.clone());
    visitor::spawn_all(
        &mut tasks,
        config,
        (0..chat.visitors, config.longpoll_share),
        &recorder,
        move |ws, global| {
            let schedule = Schedule::spread(rate, visitors, shard.local(global), until);
            visitor::chat(ws, global, schedule, shared.clone(), watch.clone())
        },
    );
    let uploads = Arc::new(Uploads::default());
    let uploaders = spawn_uploaders(&mut tasks, config, chat, (&recorder, &uploads), &phase);
    let attacks = chat.abuse.as_ref().map(|abuse| {
        let attacks = Arc::new(Attacks::default());
        attack::spawn(&mut tasks, config, abuse, &attacks, &phase);
        (attacks, attack::addresses(config, abuse))
    });
    wait_connected(config, &recorder, visitors + uploaders).await;
    let connect_seconds = connecting.elapsed().as_secs_f64();

    let start = Instant::now() + SETTLE;
    recorder.time_from((start + chat.warmup).into_std());
    let _ = phase_tx.send(Phase::Sending(start));
    progress(
        config,
        format_args!(
            "connected in {connect_seconds:.1} s; sending {rate:.0} msg/s for {:.1} s",
            chat.duration.as_secs_f64()
        ),
    );
    let sent_until = start + chat.duration;
    tokio::time::sleep_until(sent_until).await;
    let drain_deadline = sent_until + chat.drain;
    while !recorder.settled() && Instant::now() < drain_deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drained = Instant::now();
    phase::stop(phase_tx, tasks).await;

    let wanted = Wanted {
        visitors: ws_visitors + uploaders,
        longpoll: longpoll_visitors,
        agents: slots,
    };
    let mut report = recorder.report("chat", shard.to_string(), wanted);
    let send_seconds = chat.duration.as_secs_f64();
    let drain_seconds = drained.saturating_duration_since(sent_until).as_secs_f64();
    let elapsed = send_seconds + drain_seconds;
    let per_second = |count: u64| {
        if elapsed > 0.0 {
            count as f64 / elapsed
        } else {
            0.0
        }
    };
    report.connect_seconds = connect_seconds;
    report.chat = Some(ChatFigures {
        rate_wanted: rate,
        send_seconds,
        drain_seconds,
        visitor_acked_per_second: per_second(report.to_agent.acked),
        acked_per_second: per_second(report.to_agent.acked + report.to_visitor.acked),
    });
    if chat.uploads.is_some() {
        report.uploads = Some(uploads.figures(uploaders, send_seconds));
    }
    report.attack = attacks.map(|(attacks, sources)| attacks.figures(sources.to_string()));
    Ok(report)
}

/// Starts this shard's uploaders, numbered after the chatting visitors and
/// all over WebSocket; returns how many.
fn spawn_uploaders(
    tasks: &mut JoinSet<()>,
    config: &Config,
    chat: &Chat,
    (recorder, uploads): (&Arc<Recorder>, &Arc<Uploads>),
    phase: &watch::Receiver<Phase>,
) -> u32 {
    let Some(load) = &chat.uploads else {
        return 0;
    };
    let first = chat.visitors;
    let globals = first..first.saturating_add(load.uploaders);
    recorder.untimed_visitors_from(first);
    let sources = Sources::new(config.source_addrs);
    let (relays, bytes, pause) = (config.relays.clone(), load.bytes, load.pause);
    let (until, uploaders) = (chat.duration, load.uploaders);
    let (shared, uploads, phase) = (recorder.clone(), uploads.clone(), phase.clone());
    visitor::spawn_all(
        tasks,
        config,
        (globals.clone(), 0.0),
        recorder,
        move |connection, global| {
            let target = relays.for_visitor(global).clone();
            let uploader = Uploader {
                source: sources.for_connection(target.addr, global),
                target,
                global,
                bytes,
                until,
                pause,
                offset: pause.mul_f64(f64::from(global - first) / f64::from(uploaders)),
            };
            uploader.run(connection, shared.clone(), uploads.clone(), phase.clone())
        },
    );
    let owned = globals.filter(|global| config.shard.owns(*global)).count();
    u32::try_from(owned).unwrap_or(u32::MAX)
}

/// This run's message ids: unique per run (the clock) and per shard.
fn run_ids(config: &Config) -> Ids {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    Ids::new(format!("kb{millis:x}s{}", config.shard.index))
}
