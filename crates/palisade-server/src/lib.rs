//! Palisade's API server: the service layer (invariants enforced inside store transactions)
//! and the Neutron v2.0 HTTP API over it.

pub mod agents;
pub mod bootstrap;
pub mod http;
pub mod index;
pub mod keys;
pub mod keystone;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod service;
pub mod watch;

pub use service::{Context, Service, ServiceConfig};
