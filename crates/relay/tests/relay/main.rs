//! Integration tests of kefu-relay over real sockets and real SQLite files
//! (and PostgreSQL databases where a server answers), set up with
//! `kefu_testkit`.

mod admission;
mod blocking;
mod browser;
mod bulk;
mod calls;
mod calls_browser;
mod chat;
mod cluster;
mod crash;
mod deletion;
mod deletion_browser;
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
mod proxies;
mod proxy_protocol;
mod revocation;
mod schema;
mod search;
mod settings;
#[macro_use]
mod store;
mod store_abandoned;
mod store_batch;
mod store_blocks;
mod store_reads;
mod summaries;
mod support;
mod thumbnails;
mod timeline;
mod timeouts;
mod tls;
mod trail;
mod visitor_writes;
mod welcome;
