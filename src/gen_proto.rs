//! `microframework gen proto`: a service spec becomes an idiomatic proto3 file.
//!
//! The proto follows buf's STANDARD lint rules: a versioned, lower_snake package whose path
//! matches the file's directory; `...Service` service names; PascalCase services, RPCs,
//! messages and enums; lower_snake fields; one `<Rpc>Request` and `<Rpc>Response` per RPC,
//! never reused; enum values prefixed with the enum's name and a zero value ending in
//! `_UNSPECIFIED`; every import used.

use std::{io::Write, path::Path};

use anyhow::{bail, Context};

use crate::{
    cli::GenProtoArgs,
    input::{self, CompiledProtos, ProtoInput},
    report::Verbosity,
    spec::{self, ServiceSpec},
    templates::Templates,
    write::write_file_atomically,
};

/// Template of a spec's proto.
const SPEC_PROTO_TEMPLATE: &str = "input/spec.proto";

/// Renders the spec's proto and compiles it, so only a proto that compiles is ever returned.
pub fn spec_proto(
    spec: &ServiceSpec,
    templates: &Templates,
) -> anyhow::Result<(String, CompiledProtos)> {
    let mut context = tera::Context::new();
    context.insert("spec", spec);
    let proto = templates.render(SPEC_PROTO_TEMPLATE, &context)?;
    let mut input = ProtoInput {
        memory_is_derived: true,
        ..ProtoInput::default()
    };
    input.memory.insert(&spec.proto_path, proto.clone());
    input.roots.push(spec.proto_path.clone());
    let compiled = input::compile(&input)
        .context("the proto made from the spec does not compile (a bug in microframework)")?;
    Ok((proto, compiled))
}

/// Runs `microframework gen proto`.
pub fn run(args: &GenProtoArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    let spec = spec::load(&args.spec)?;
    let templates = Templates::embedded()?;
    let (proto, _) = spec_proto(&spec, &templates)?;
    match &args.output {
        None => std::io::stdout()
            .write_all(proto.as_bytes())
            .context("cannot write to standard output"),
        Some(path) => {
            write_file(path, &proto, args.force)?;
            if verbosity != Verbosity::Quiet {
                eprintln!(
                    "Wrote {} ({} {}, package {}); its import path is {}",
                    path.display(),
                    spec.service,
                    if spec.resources.len() == 1 {
                        "over 1 resource".to_owned()
                    } else {
                        format!("over {} resources", spec.resources.len())
                    },
                    spec.package,
                    spec.proto_path
                );
            }
            Ok(())
        }
    }
}

/// Writes `contents` to `path` atomically; an existing file is replaced only with `force`.
fn write_file(path: &Path, contents: &str, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; nothing was written (use --force to replace it)",
            path.display()
        );
    }
    write_file_atomically(path, contents)
}
