//! `microframework new`: the whole pipeline, input -> model -> plan -> render -> write -> report.

use std::{collections::HashMap, path::PathBuf, time::Instant};

use anyhow::Context;

use crate::{
    cli::NewArgs,
    gen_proto,
    input::{self, CompiledProtos, ProtoInput},
    model::{self, KnownServices},
    naming, plan,
    render::{self, RenderedFile},
    report::{self, Progress, Verbosity},
    spec::{self, ServiceSpec},
    templates::Templates,
    write,
};

/// Template of the default proto, rendered from the project name.
const DEFAULT_PROTO_TEMPLATE: &str = "input/resource.proto";

/// Renders the default project of `name`: one CRUD service over the resource the name gives.
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
    let known = KnownServices {
        resources: HashMap::from([(
            format!("{}.{}", default.package, default.service),
            default.resource.clone(),
        )]),
        spec: None,
    };
    render_compiled(name, &compiled, &known, templates)
}

/// Renders a project serving every service of the given root protos, with stub handlers.
pub fn render_proto_project(
    name: &str,
    input: &ProtoInput,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    naming::validate_project_name(name)?;
    let compiled = input::compile(input)?;
    render_compiled(name, &compiled, &KnownServices::default(), templates)
}

/// Renders a project from a service spec, with a working in-memory implementation of every
/// resource.
pub fn render_spec_project(
    name: &str,
    spec: ServiceSpec,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    naming::validate_project_name(name)?;
    let (_, compiled) = gen_proto::spec_proto(&spec, templates)?;
    let known = KnownServices {
        resources: HashMap::new(),
        spec: Some(spec),
    };
    render_compiled(name, &compiled, &known, templates)
}

fn render_compiled(
    name: &str,
    compiled: &CompiledProtos,
    known: &KnownServices,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    let project = model::build_project(name, compiled, known)?;
    let plan = plan::plan_project(&project, compiled, templates)?;
    let files = render::render_project(&plan, &project, templates)?;
    Ok((project, files))
}

/// Runs `microframework new`.
pub fn run(args: &NewArgs, verbosity: Verbosity) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = Progress::new(verbosity);
    let outcome = generate(args, &progress);
    progress.finish();
    let (project, files, target) = outcome?;
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

/// Renders and writes the project; returns what was written and where.
fn generate(
    args: &NewArgs,
    progress: &Progress,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>, PathBuf)> {
    progress.step("Rendering the project");
    let templates = Templates::with_overrides(args.templates.as_deref())?;
    let (project, files) = if let Some(spec) = &args.spec {
        render_spec_project(&args.name, spec::load(spec)?, &templates)?
    } else if args.protos.is_empty() {
        render_new_project(&args.name, &templates)?
    } else {
        let input = ProtoInput::from_files(&args.protos, &args.includes)?;
        render_proto_project(&args.name, &input, &templates)?
    };
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    progress.step(&format!("Writing {} files", files.len()));
    write::create_project(&target, &files)?;
    Ok((project, files, target))
}
