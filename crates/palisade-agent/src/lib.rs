//! Palisade's agent: reads the MEP-style config, takes data from its sources, and keeps one
//! nftables program in force through one rule-file controller, fail-safe.

pub mod agent;
pub mod config;
pub mod droplog;
pub mod metrics;
pub mod nft;
pub mod source;

/// The NFLOG group drops are logged to when the droptailer is on.
pub const DROP_LOG_GROUP: u16 = 7;
