//! Declarative managed security groups for Kubernetes clusters, in the shape of the Cluster
//! API OpenStack proposal (seed 000) and of what CAPO shipped: manifests → desired groups →
//! a plan against what the API shows → apply → the status CAPO records.
//!
//! `spec` and `plan` are pure; `apply` talks to the server through `palisade-client`.

pub mod apply;
pub mod plan;
pub mod spec;
