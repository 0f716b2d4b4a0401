//! Integration tests of kefu-relay over real sockets and real SQLite files.

mod browser;
mod chat;
mod cluster;
mod crash;
mod input;
mod layers;
mod longpoll;
mod ops;
mod store;
mod summaries;
mod support;
