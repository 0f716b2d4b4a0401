//! Integration tests of kefu-relay over real sockets and real SQLite files
//! (and PostgreSQL databases where a server answers), set up with
//! `kefu_testkit`.

mod browser;
mod chat;
mod cluster;
mod crash;
mod desk;
mod input;
mod layers;
mod longpoll;
mod metrics;
mod ops;
mod schema;
mod settings;
mod store;
mod summaries;
mod support;
mod tls;
