//! The one integration-test binary: real HTTP servers on loopback, real SQLite files, the real
//! `tinbao` binary.

mod support;

mod cli;
mod clustering;
mod conformance;
mod daemon;
mod digest;
mod discover;
mod filters;
mod full_text;
mod html_sources;
mod ingest;
mod instances;
mod match_cli;
mod once;
mod opml_import;
mod private_feeds;
mod publish;
mod selfservice;
mod storage;
mod topic_feeds;
mod validity;
mod websub;
