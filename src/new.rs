//! `microframework new`: the whole pipeline, input -> model -> plan -> render -> write -> report.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;

use crate::{
    cli::NewArgs,
    gen_proto,
    input::{self, CompiledProtos, ProtoInput},
    model::{self, Features, KnownServices},
    naming,
    plan::{self, Ownership},
    project_file::{ProjectFile, SourceKind, SPEC_FILE},
    render::{self, RenderedFile},
    report::{self, Progress, Verbosity},
    spec,
    templates::Templates,
    write,
};

/// Template of the default proto, rendered from the project name.
const DEFAULT_PROTO_TEMPLATE: &str = "input/resource.proto";

/// Renders the default project of `name`: one CRUD service over the resource the name gives.
pub fn render_new_project(
    name: &str,
    features: &Features,
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
    let known = KnownServices::default_of(name);
    render_compiled(
        name,
        &compiled,
        &known,
        SourceKind::Default,
        features,
        templates,
    )
}

/// Renders a project serving every service of the given root protos, with stub handlers.
pub fn render_proto_project(
    name: &str,
    input: &ProtoInput,
    features: &Features,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    naming::validate_project_name(name)?;
    let compiled = input::compile(input)?;
    let known = KnownServices::default();
    render_compiled(
        name,
        &compiled,
        &known,
        SourceKind::Proto,
        features,
        templates,
    )
}

/// Renders a project from a service spec (its text, read from `spec_path`), with a working
/// in-memory implementation of every resource. The spec is copied into the project.
pub fn render_spec_project(
    name: &str,
    spec_path: &Path,
    spec_text: &str,
    features: &Features,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    naming::validate_project_name(name)?;
    let spec = spec::from_text(spec_path, spec_text)?;
    let (_, compiled) = gen_proto::spec_proto(&spec, templates)?;
    let known = KnownServices {
        resources: HashMap::new(),
        spec: Some(spec),
    };
    let (project, mut files) = render_compiled(
        name,
        &compiled,
        &known,
        SourceKind::Spec,
        features,
        templates,
    )?;
    insert_by_path(
        &mut files,
        RenderedFile {
            path: SPEC_FILE.to_owned(),
            ownership: Ownership::UserOwned,
            contents: spec_text.to_owned(),
        },
    );
    Ok((project, files))
}

pub(crate) fn render_compiled(
    name: &str,
    compiled: &CompiledProtos,
    known: &KnownServices,
    source: SourceKind,
    features: &Features,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>)> {
    let project = model::build_project(name, compiled, known, features)?;
    let plan = plan::plan_project(&project, compiled, templates)?;
    let mut files = render::render_project(&plan, &project, templates)?;
    let record = ProjectFile {
        tool_version: project.tool_version.clone(),
        name: name.to_owned(),
        source,
        features: *features,
        proto_roots: compiled.roots.clone(),
        templates_dir: templates
            .overrides_dir()
            .map(|dir| dir.display().to_string()),
        files: Default::default(),
    }
    .render(&files)?;
    insert_by_path(&mut files, record);
    Ok((project, files))
}

/// Adds `file` to `files`, which stay sorted by path.
fn insert_by_path(files: &mut Vec<RenderedFile>, file: RenderedFile) {
    let at = files.partition_point(|other| other.path < file.path);
    files.insert(at, file);
}

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
    let services: Vec<String> = project
        .services
        .iter()
        .map(|s| s.full_name.clone())
        .collect();
    report::new_project_summary(verbosity, &target, &project.name, &files, &services);
    if verbosity != Verbosity::Quiet {
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
    let features = args.features.apply(Features::default());
    let (project, files) = if let Some(spec) = &args.spec {
        let text = std::fs::read_to_string(spec)
            .with_context(|| format!("cannot read spec {}", spec.display()))?;
        render_spec_project(&args.name, spec, &text, &features, &templates)?
    } else if args.protos.is_empty() {
        render_new_project(&args.name, &features, &templates)?
    } else {
        let input = ProtoInput::from_files(&args.protos, &args.includes)?;
        render_proto_project(&args.name, &input, &features, &templates)?
    };
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
