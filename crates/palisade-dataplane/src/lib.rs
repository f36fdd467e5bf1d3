//! Palisade's dataplane compiler: a host's view of the security groups (from the API or a
//! state file) → a ruleset IR → deterministic nftables text; `explain` evaluates a packet
//! against the same IR.
//!
//! Pure: no I/O, no clocks. The agent runs `nft`; this crate only computes what to run.

pub mod explain;
pub mod firewall;
pub mod graph;
pub mod ir;
pub mod lint;
pub mod matrix;
pub mod render;
pub mod state;
pub mod svg;
pub mod view;

pub use ir::{compile, CompileError, Ruleset};
pub use render::{delta, delta_of_parts, render, Delta};
pub use state::{State, StateError};
pub use view::HostView;
