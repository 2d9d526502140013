//! Reading sources: a pipeline of small modules, each with one job. `fetcher` speaks HTTP;
//! `parser` turns bytes into items through one chain, `decode` -> `repair` -> feed-rs ->
//! `convert`, with `normalize` holding the text, link and date rules; `skim` remembers what a
//! stored document's entries became, so a changed one is read for its new entries only;
//! `html_source` reads a section page without a feed through the operator's CSS selectors;
//! `filter` applies the operator's skip/keep rules; `full_text` reads teaser items' article
//! pages for their body (`article`); `schedule` decides the next poll; and
//! `refresh` runs the one fetch -> parse -> filter -> store sequence.

mod addresses;
pub mod article;
mod clustering;
mod convert;
pub mod decode;
pub mod discover;
pub mod fetcher;
pub mod filter;
pub mod full_text;
pub mod html_source;
pub mod normalize;
pub mod parser;
pub mod refresh;
pub mod repair;
pub mod schedule;
pub mod skim;
