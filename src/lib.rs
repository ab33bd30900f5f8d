//! microframework turns a service name, `.proto` files or a service spec into a complete tonic
//! gRPC project. The stages run one way, and no module imports from a later one
//! (`tests/layering.rs` checks it):
//!
//! cli -> commands -> input -> model -> plan -> render -> reconcile -> write -> report
//!
//! `naming` holds the naming rules the input (specs) and the model share.

pub mod cli;
pub mod commands;
pub mod input;
pub mod model;
pub mod naming;
pub mod plan;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod write;

pub use commands::run;
