//! palisade-client
