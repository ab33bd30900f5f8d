//! Input stage: everything the tool reads. Proto files parsed by protox, service specs, the
//! templates (embedded or overridden) and a project's `microframework.toml`. Nothing
//! downstream reads raw proto text or TOML.

pub mod lint;
pub mod project_file;
pub mod protos;
pub mod sandbox;
pub mod sources;
pub mod spec;
pub mod tree;

pub use protos::{compile, line_column, CompiledProtos, Origin, ProtoInput, ProtoSources};
