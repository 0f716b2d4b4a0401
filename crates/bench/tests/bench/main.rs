//! kefu-bench against real relays on random ports with temporary SQLite
//! files: its report is complete, its loss check holds and can fail.

mod chat;
mod idle;
mod support;
