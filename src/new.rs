//! `microframework new`: the whole pipeline, input -> model -> plan -> render -> write -> report.

use std::{collections::HashMap, path::PathBuf, time::Instant};

use anyhow::Context;

use crate::{
    cli::NewArgs,
    input::{self, ProtoInput},
    model, naming, plan,
    render::{self, RenderedFile},
    report::{self, Progress, Verbosity},
    templates::Templates,
    write,
};

/// Template of the default proto, rendered from the project name.
const DEFAULT_PROTO_TEMPLATE: &str = "input/resource.proto";

/// Renders the project `args` describes, entirely in memory.
pub fn render_new_project(
    name: &str,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    naming::validate_project_name(name)?;
    let default = naming::default_service(name);
    let mut context = tera::Context::new();
    context.insert("default", &default);
    let proto = templates.render(DEFAULT_PROTO_TEMPLATE, &context)?;

    let mut input = ProtoInput::default();
    input.memory.insert(&default.proto_path, proto);
    input.roots.push(default.proto_path.clone());
    let compiled = input::compile(&input)
        .context("the default proto does not compile (a bug in microframework)")?;

    let resources = HashMap::from([(
        format!("{}.{}", default.package, default.service),
        default.resource.clone(),
    )]);
    let project = model::build_project(name, &compiled, &resources)?;
    let plan = plan::plan_project(&project, &compiled, templates)?;
    let files = render::render_project(&plan, &project, templates)?;
    Ok((project, files))
}

/// Runs `microframework new`.
pub fn run(args: &NewArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    let started = Instant::now();
    // Refuse a bad name before any progress output, so the error stands alone.
    naming::validate_project_name(&args.name)?;
    let progress = Progress::new(verbosity);
    progress.step("Rendering the project");
    let templates = Templates::embedded()?;
    let (project, files) = render_new_project(&args.name, &templates)?;
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    progress.step(&format!("Writing {} files", files.len()));
    let written = write::create_project(&target, &files);
    progress.finish();
    written?;
    let services: Vec<String> = project
        .services
        .iter()
        .map(|s| s.full_name.clone())
        .collect();
    report::new_project_summary(verbosity, &target, &project.name, &files, &services);
    if verbosity == Verbosity::Normal {
        eprintln!("Done in {} ms.", started.elapsed().as_millis());
    }
    Ok(())
}
