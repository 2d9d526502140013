//! tinbao: an aggregator and notifier for Vietnamese provincial news.
//!
//! The crate is a library with a thin binary (`src/main.rs`), so tests drive the same code that
//! production runs. Data flows one way: `config` → `reader` (fetch, parse, normalise, schedule,
//! refresh) → `storage` (the only module that speaks SQL). `text` is pure Vietnamese text logic.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod digest;
pub mod http;
pub mod publish;
pub mod reader;
pub mod storage;
pub mod text;
pub mod worker;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
