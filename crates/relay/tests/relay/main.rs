//! Integration tests of kefu-relay over real sockets and real SQLite files
//! (and PostgreSQL databases where a server answers), set up with
//! `kefu_testkit`.

mod admission;
mod browser;
mod chat;
mod cluster;
mod crash;
mod desk;
mod files;
mod files_browser;
mod files_cluster;
mod files_crash;
mod files_s3;
mod input;
mod layers;
mod longpoll;
mod metrics;
mod ops;
mod outbox;
mod revocation;
mod schema;
mod settings;
#[macro_use]
mod store;
mod store_reads;
mod summaries;
mod support;
mod timeline;
mod tls;
