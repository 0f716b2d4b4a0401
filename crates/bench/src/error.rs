//! What can stop a run.

use crate::config;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("shard {shard} has visitors but no agent to answer them: pass more agent tokens")]
    NoAgents { shard: config::Shard },
    #[error("cannot read the resident memory of process {pid} from /proc")]
    Rss {
        pid: u32,
        #[source]
        source: Option<std::io::Error>,
    },
}
