//! Integration tests of kefu-relay over real sockets and real SQLite files.

mod chat;
mod crash;
mod input;
mod support;
