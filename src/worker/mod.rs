//! The long-running parts: claim due work, call the modules that do it. `publisher` regenerates
//! merged feeds; the daemon loop lives in `daemon`,
//! one pass of the whole pipeline (cron's `run --once`) in `once`.

pub mod daemon;
pub mod once;
pub mod publisher;
pub mod reload;
