//! Search latency through a running relay (`kefu-bench-search`): one agent
//! connection asks the same `search` requests over and over, one at a
//! time, and each query's round trip is timed — the protocol, the relay's
//! checks and its store's search together, as an agent meets them.
//!
//! One at a time on purpose: this measures what one query costs, not how
//! many the relay answers at once (its search pool is two connections).
//! And paced: the relay lets one connection send a few frames a second
//! (`frames_per_second`), past which it refuses them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use kefu_protocol::agent::AgentEvent;
use kefu_protocol::agent::AgentRequest;
use kefu_protocol::agent::search::SearchRequest;

use crate::agent;
use crate::config::Target;
use crate::latency::{self, Percentiles};
use crate::net::{self, ConnectError, WireError};

/// One query's figures over its runs.
#[derive(Debug, Clone)]
pub struct QueryTimes {
    pub query: String,
    pub hits: usize,
    /// In milliseconds.
    pub latency: Percentiles,
    /// Runs the relay refused (past its search budget, say), by message.
    pub refused: BTreeMap<String, u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchBenchError {
    #[error("cannot sign in as an agent")]
    Connect(#[from] ConnectError),
    #[error("the connection failed")]
    Wire(#[from] WireError),
}

/// Runs each of `queries` `runs` times and times the answers.
pub async fn run(
    target: &Target,
    source: Option<IpAddr>,
    token: &str,
    queries: &[String],
    runs: u32,
    pace: Duration,
) -> Result<Vec<QueryTimes>, SearchBenchError> {
    let mut ws = agent::connect(target, source, token).await?;
    let mut results = Vec::with_capacity(queries.len());
    let mut asked = 0u64;
    for query in queries {
        let mut histogram = latency::histogram();
        let mut hits = 0;
        let mut refused = BTreeMap::new();
        for _ in 0..runs {
            tokio::time::sleep(pace).await;
            asked += 1;
            let request_id = format!("s{asked}");
            let started = Instant::now();
            net::send(
                &mut ws,
                &AgentRequest::Search(SearchRequest {
                    request_id: Some(request_id.clone()),
                    query: query.clone(),
                    ..SearchRequest::default()
                }),
            )
            .await?;
            // Other frames (presence, queue changes) may come between.
            loop {
                match net::recv::<AgentEvent>(&mut ws).await? {
                    AgentEvent::SearchResults(page)
                        if page.request_id.as_deref() == Some(&request_id) =>
                    {
                        hits = page.hits.len();
                        break;
                    }
                    AgentEvent::Error(error) if error.reference.as_deref() == Some(&request_id) => {
                        *refused.entry(error.message).or_insert(0) += 1;
                        break;
                    }
                    _ => {}
                }
            }
            latency::record(&mut histogram, started, Instant::now());
        }
        results.push(QueryTimes {
            query: query.clone(),
            hits,
            latency: Percentiles::of(&histogram),
            refused,
        });
    }
    net::close(ws).await;
    Ok(results)
}
