//! Reading sources: a pipeline of small modules, each with one job. `fetcher` speaks HTTP,
//! `parser` turns bytes into items (after `repair` fixes shapes feed-rs refuses), `normalize` holds the text/link/date rules, `schedule`
//! decides the next poll, and `refresh` runs the one fetch → parse → store sequence.

pub mod fetcher;
pub mod normalize;
pub mod parser;
pub mod refresh;
pub mod repair;
pub mod schedule;
