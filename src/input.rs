//! Input stage: proto sources are parsed by protox into descriptors. Nothing downstream reads
//! proto text.

use std::collections::BTreeMap;

use anyhow::anyhow;
use prost_types::FileDescriptorSet;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

/// Proto sources held in memory, by import path (`user/v1/user.proto`).
#[derive(Debug, Clone, Default)]
pub struct ProtoSources {
    files: BTreeMap<String, String>,
}

impl ProtoSources {
    /// Adds a source file under its import path.
    pub fn insert(&mut self, import_path: impl Into<String>, source: impl Into<String>) {
        self.files.insert(import_path.into(), source.into());
    }

    /// The sources, by import path.
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.files
            .iter()
            .map(|(path, source)| (path.as_str(), source.as_str()))
    }
}

impl FileResolver for ProtoSources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(source) => File::from_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// What protox made of the input: the root files and everything they import.
#[derive(Debug, Clone)]
pub struct CompiledProtos {
    /// Import paths of the root files, whose services the project serves.
    pub roots: Vec<String>,
    /// Descriptors of the roots and their imports, dependencies first, with source info.
    pub descriptors: FileDescriptorSet,
    /// The sources that were compiled (roots and non-bundled imports).
    pub sources: ProtoSources,
}

/// Compiles `roots` from `sources`, resolving `google/protobuf/*` from protox's bundled copies.
pub fn compile(sources: ProtoSources, roots: Vec<String>) -> anyhow::Result<CompiledProtos> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(sources.clone());
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true).include_source_info(true);
    for root in &roots {
        compiler
            .open_file(root)
            .map_err(|err| anyhow!("{}", describe(&err)))?;
    }
    Ok(CompiledProtos {
        descriptors: compiler.file_descriptor_set(),
        roots,
        sources,
    })
}

/// One line naming the file (with line and column where protox has them) and the problem.
fn describe(err: &protox::Error) -> String {
    match err.file() {
        Some(file) if !err.to_string().contains(file) => format!("{file}: {err}"),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_in_memory_sources_with_well_known_imports() {
        let mut sources = ProtoSources::default();
        sources.insert(
            "demo/v1/demo.proto",
            "syntax = \"proto3\";\npackage demo.v1;\nimport \"google/protobuf/timestamp.proto\";\nmessage Ping { google.protobuf.Timestamp at = 1; }\nservice Demo { rpc Send(Ping) returns (Ping); }\n",
        );
        let compiled = compile(sources, vec!["demo/v1/demo.proto".into()]).expect("compiles");
        let names: Vec<_> = compiled.descriptors.file.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            ["google/protobuf/timestamp.proto", "demo/v1/demo.proto"]
        );
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let mut sources = ProtoSources::default();
        sources.insert("bad.proto", "syntax = \"proto3\";\nmessage {\n");
        let err = compile(sources, vec!["bad.proto".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.proto"), "{err}");
    }
}
