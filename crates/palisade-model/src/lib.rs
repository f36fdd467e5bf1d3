//! Palisade's resources, ids, validation and normalisation with Neutron's semantics.
//!
//! Pure: no I/O, no clocks, no randomness. Everything a test can check without a socket
//! about what a request means lives here; the server only moves data between this crate
//! and the store.

pub mod convert;
pub mod error;
pub mod hmac_auth;
pub mod input;
pub mod resource;
pub mod rule;

pub use error::Error;
pub use resource::{
    AddressGroup, AddressPair, FixedIp, Network, Port, SecurityGroup, SecurityGroupRule,
};
pub use rule::{fingerprint, parse_rule, validate_rule, Direction, EtherType, NewRule};
