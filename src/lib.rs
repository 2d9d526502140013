//! tinbao: an aggregator and notifier for Vietnamese provincial news.
//!
//! The crate is a library with a thin binary (`src/main.rs`), so tests drive the same code that
//! production runs.
//!
//! The layers, each using only those below it: at the bottom `model` (the values that cross
//! layers: a poll's items and validators), `text` (Vietnamese text: plain text of HTML, folding,
//! the topic query language) and `config` (feeds.toml, validated); above them `storage` (the
//! only module that speaks SQL) and `cluster` (near-duplicate stories, pure); then the stages
//! that use storage: `reader` (fetch, parse, normalise, schedule, refresh), `publish` (merged
//! feeds) and `digest` (who is owed what, rendering, the outbox, SMTP); then `http` (the routes);
//! then `worker` (the daemon loop, which serves `http`, and `run --once`, both calling the
//! stages); `cli` and `demo` on top, called by the thin binary. (Only `cluster`'s tests reach up,
//! to the parser, for real documents to cluster.)

pub mod allocator;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod digest;
pub mod http;
pub mod model;
pub mod publish;
pub mod reader;
mod seam;
pub mod storage;
pub mod text;
pub mod websub;
pub mod worker;
