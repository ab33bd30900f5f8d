//! `microframework templates list | export DIR`.

use std::path::Path;

use crate::{
    input::sources::{embedded_sources, INPUT_DIR, SUFFIX},
    model::features::FEATURES_DIR,
    plan::{
        templates::{Each, Templates},
        Ownership,
    },
    render::RenderedFile,
    report::Verbosity,
    write,
};

/// `microframework templates list`: every template, what it produces and who owns it.
pub fn list() -> anyhow::Result<()> {
    let templates = Templates::embedded()?;
    println!("Project templates (path under templates/ -> file in the project, owner):");
    for template in templates.project_templates() {
        let front = &template.front;
        let owner = front.owner.label();
        let mut line = format!("  {}{SUFFIX} -> {} ({owner}", template.name, front.to);
        if let Some(Each::Service) = front.each {
            line.push_str(", once per service");
        }
        if let Some((feature, kind)) = feature_kind(&template.name) {
            line.push_str(&format!(", with {feature} = {kind}"));
        }
        if let Some(condition) = &front.when {
            line.push_str(&format!(", when {condition}"));
        }
        println!("{line})");
    }
    println!("Fragments (a feature's part of shared files, placed where a template loops over `fragments.<point>`):");
    for fragment in templates.fragments() {
        let mut line = format!(
            "  {}{SUFFIX} -> fragments.{}",
            fragment.name, fragment.point
        );
        if let Some((feature, kind)) = feature_kind(&fragment.name) {
            line.push_str(&format!(" (with {feature} = {kind})"));
        }
        println!("{line}");
    }
    println!("Input templates (rendered into the proto a project starts from):");
    for (path, _) in embedded_sources()? {
        if path.starts_with(INPUT_DIR) {
            println!("  {path}");
        }
    }
    Ok(())
}

/// The feature and kind whose folder holds the template `name`, if a feature's.
fn feature_kind(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(FEATURES_DIR)?;
    let (feature, rest) = rest.split_once('/')?;
    Some((feature, rest.split('/').next().unwrap_or_default()))
}

/// `microframework templates export DIR`: writes every template into a new directory.
pub fn export(dir: &Path, verbosity: Verbosity) -> anyhow::Result<()> {
    let files: Vec<RenderedFile> = embedded_sources()?
        .into_iter()
        .map(|(path, text)| RenderedFile {
            path,
            ownership: Ownership::UserOwned,
            contents: text.to_owned(),
        })
        .collect();
    write::create_project(dir, &files)?;
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "Exported {} templates to {}; edit them and pass the directory with `new --templates {}`",
            files.len(),
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}
