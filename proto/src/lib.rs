//! The deploy contract shared by the CLI, the workflow and the worker.
//!
//! Types are generated from `deployctl/v1/deploy.proto` by prost; their serde impls follow the
//! proto-JSON mapping (pbjson), which is what the Temporal payload converter sends.

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/deployctl.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/deployctl.v1.serde.rs"));
}

pub mod names;
pub mod runtime_api;
