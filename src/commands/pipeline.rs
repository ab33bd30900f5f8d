//! The pipeline every command shares: input -> model -> plan -> render, in memory. `new`
//! writes what it renders; `gen` and `check` compare it with the disk first.

use std::{collections::HashMap, path::Path};

use anyhow::Context;

use crate::{
    input::{
        self, lint,
        project_file::{ProjectFile, SourceKind, SPEC_FILE},
        sources::{self, TemplateSources},
        spec::{self, ServiceSpec},
        tree, CompiledProtos, ProtoInput,
    },
    model::{self, features::Features, KnownServices},
    naming,
    plan::{self, templates::Templates, Ownership},
    render::{self, record::render_record, RenderedFile},
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
    let proto = templates
        .sources()
        .render_input(DEFAULT_PROTO_TEMPLATE, &context)?;

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
    let (_, compiled) = spec_proto(&spec, templates.sources())?;
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

fn render_compiled(
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
        features: features.to_record(),
        proto_roots: compiled.roots.clone(),
        templates_dir: templates.recorded_dir().map(str::to_owned),
        files: Default::default(),
        unfinished: Default::default(),
        runtime_version: Some(sources::runtime_version()),
        deploy_layout: Some(features.kubernetes_layout.number()),
    };
    let record = render_record(record, &files)?;
    insert_by_path(&mut files, record);
    Ok((project, files))
}

/// Adds `file` to `files`, which stay sorted by path.
fn insert_by_path(files: &mut Vec<RenderedFile>, file: RenderedFile) {
    let at = files.partition_point(|other| other.path < file.path);
    files.insert(at, file);
}

/// Template of a spec's proto.
const SPEC_PROTO_TEMPLATE: &str = "input/spec.proto";

/// Renders the spec's proto and compiles it, so only a proto that compiles is ever returned.
pub fn spec_proto(
    spec: &ServiceSpec,
    sources: &TemplateSources,
) -> anyhow::Result<(String, CompiledProtos)> {
    let mut context = tera::Context::new();
    context.insert("spec", spec);
    let proto = sources.render_input(SPEC_PROTO_TEMPLATE, &context)?;
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

/// Renders the project in `dir` again from its own inputs (its `proto/` or `spec.toml`, and
/// what `microframework.toml` records); also lints the user's root protos.
pub fn render_existing(
    dir: &Path,
    record: &ProjectFile,
    features: &Features,
    templates: &Templates,
) -> anyhow::Result<(model::Project, Vec<RenderedFile>, Vec<lint::Finding>)> {
    if record.source == SourceKind::Spec {
        let path = dir.join(SPEC_FILE);
        let text = tree::read_text(dir, SPEC_FILE, "the project's spec")?;
        let (project, files) =
            render_spec_project(&record.name, &path, &text, features, templates)?;
        return Ok((project, files, Vec::new()));
    }
    // protox reads the protos by name: nothing under proto/ may lead out of the project.
    tree::check_subtree(dir, "proto")?;
    let input = ProtoInput {
        roots: record.proto_roots.clone(),
        includes: vec![dir.join("proto")],
        ..ProtoInput::default()
    };
    let compiled = input::compile(&input)?;
    let known = if record.source == SourceKind::Default {
        KnownServices::default_of(&record.name)
    } else {
        KnownServices::default()
    };
    let roots: Vec<_> = compiled
        .descriptors
        .file
        .iter()
        .filter(|file| record.proto_roots.iter().any(|root| root == file.name()))
        .collect();
    let findings = lint::lint(&roots);
    let (project, files) = render_compiled(
        &record.name,
        &compiled,
        &known,
        record.source,
        features,
        templates,
    )?;
    Ok((project, files, findings))
}
