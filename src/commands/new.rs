//! `microframework new`: render a project in memory, then write it into a new directory.

use std::{path::PathBuf, time::Instant};

use crate::{
    cli::NewArgs,
    commands::pipeline::{render_new_project, render_proto_project, render_spec_project},
    input::{project_file::PROJECT_TEMPLATES_DIR, tree, ProtoInput},
    model::{features::Features, Project},
    plan::{templates::Templates, Ownership},
    render::RenderedFile,
    report::{self, Progress, Verbosity},
    write,
};

/// Runs `microframework new`.
pub fn run(args: &NewArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = Progress::new(verbosity);
    let outcome = generate(args, &progress);
    progress.finish();
    let (project, files, target) = outcome?;
    if args.dry_run {
        return Ok(());
    }
    report::new_project_summary(verbosity, &target, &project, &files);
    if verbosity != Verbosity::Quiet {
        eprintln!("Done in {} ms.", started.elapsed().as_millis());
    }
    Ok(())
}

/// Renders and writes the project; returns what was written and where.
fn generate(
    args: &NewArgs,
    progress: &Progress,
) -> anyhow::Result<(Project, Vec<RenderedFile>, PathBuf)> {
    progress.step("Rendering the project");
    let templates = Templates::with_overrides(
        args.templates
            .as_deref()
            .map(|dir| (dir, PROJECT_TEMPLATES_DIR)),
    )?;
    let features = args.features.apply(Features::default());
    let (project, mut files) = if let Some(spec) = &args.spec {
        let text = tree::read_named(spec, "spec")?;
        render_spec_project(&args.name, spec, &text, &features, &templates)?
    } else if args.protos.is_empty() {
        render_new_project(&args.name, &features, &templates)?
    } else {
        let input = ProtoInput::from_files(&args.protos, &args.includes)?;
        render_proto_project(&args.name, &input, &features, &templates)?
    };
    // The overrides go with the project, which records them there: `gen` and `check` read
    // templates only from inside the project.
    for (path, text) in templates.overrides() {
        files.push(RenderedFile {
            path: format!("{PROJECT_TEMPLATES_DIR}/{path}"),
            ownership: Ownership::UserOwned,
            contents: text.clone(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if args.dry_run {
        for file in &files {
            let owner = file.ownership.label();
            println!("create ({owner}) {}", target.join(&file.path).display());
        }
        return Ok((project, files, target));
    }
    progress.step(&format!("Writing {} files", files.len()));
    write::create_project(&target, &files)?;
    Ok((project, files, target))
}
