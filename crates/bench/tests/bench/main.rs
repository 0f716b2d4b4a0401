//! kefu-bench against real relays on random ports with temporary SQLite
//! files (and two relays on one PostgreSQL database), and against the
//! reference relay: its report is complete, its loss check holds and can
//! fail.

mod chat;
mod cluster;
mod extras;
mod idle;
mod reference;
mod search;
mod support;
