//! The library half of `rvsctl`: the configuration importers behind
//! `rvsctl import ldirectord|keepalived FILE` (another balancer's file →
//! rvs.toml), kept here so that fuzz targets and tests can call the
//! readers directly. The command line itself is `src/main.rs`.

pub mod import;
