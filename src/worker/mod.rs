//! The long-running parts: claim due work, call the modules that do it. `publisher` regenerates
//! merged feeds; the daemon loop lives in `daemon`.

pub mod daemon;
pub mod publisher;
pub mod reload;
