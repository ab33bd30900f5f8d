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
    commands::pipeline::spec_proto,
    input::{sources::TemplateSources, spec},
    report::Verbosity,
    write::write_file_atomically,
};

/// Runs `microframework gen proto`.
pub fn run(args: &GenProtoArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    let spec = spec::load(&args.spec)?;
    let (proto, _) = spec_proto(&spec, &TemplateSources::embedded()?)?;
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
