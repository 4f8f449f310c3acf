//! The service table (placeholder while being written).
