//! The templates embedded in the binary. Each project template starts with TOML front matter
//! that declares its own destiny:
//!
//! ```text
//! +++
//! to = "src/services/{{ service.module }}.rs"   # output path, itself a template
//! owner = "user"                                 # "tool": rewritten every run; "user": written once
//! each = "service"                               # optional: render once per service
//! when = "service.resource"                      # optional: a Tera condition
//! +++
//! ```

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{anyhow, bail, Context};
use include_dir::{include_dir, Dir};
use serde::Deserialize;
use tera::Tera;

use crate::{plan::Ownership, render::RenderedFile, report::Verbosity, write};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// Directory of project templates inside `templates/`.
const PROJECT_DIR: &str = "project";
/// Suffix every template file carries.
const SUFFIX: &str = ".tera";
const FENCE: &str = "+++";

/// Directory of the bundled third-party protos inside `templates/`.
const BUNDLED_PROTOS_DIR: &str = "protos";

/// The source of a bundled third-party proto by import path (`google/api/http.proto`).
pub fn bundled_proto(import_path: &str) -> Option<&'static str> {
    EMBEDDED
        .get_file(format!("{BUNDLED_PROTOS_DIR}/{import_path}"))
        .and_then(|file| file.contents_utf8())
}

/// What a project template's front matter says about it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    /// Output path relative to the project root (a Tera template).
    pub to: String,
    /// Who owns the output file.
    pub owner: Ownership,
    /// Render once per item of this collection (`service`) instead of once.
    #[serde(default)]
    pub each: Option<Each>,
    /// Render only when this Tera expression is truthy.
    #[serde(default)]
    pub when: Option<String>,
}

/// Collections a template can be rendered for, one output file per item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Each {
    /// Every service of the project, bound as `service`.
    Service,
}

/// A project template: its name in Tera and its front matter.
#[derive(Debug, Clone)]
pub struct ProjectTemplate {
    /// Tera name: the path under `templates/project/` without `.tera`.
    pub name: String,
    /// What the template declares about its output.
    pub front: FrontMatter,
}

/// All templates, parsed once.
pub struct Templates {
    tera: Tera,
    project: Vec<ProjectTemplate>,
    overrides: Option<PathBuf>,
}

/// The embedded template files: path under `templates/` (with `.tera`) and text.
pub fn embedded_sources() -> anyhow::Result<Vec<(String, &'static str)>> {
    all_files(&EMBEDDED)
        .into_iter()
        .filter_map(|file| {
            let path = file.path().to_string_lossy().replace('\\', "/");
            path.ends_with(SUFFIX).then_some((path, file))
        })
        .map(|(path, file)| {
            let text = file
                .contents_utf8()
                .ok_or_else(|| anyhow!("template {path} is not UTF-8"))?;
            Ok((path, text))
        })
        .collect()
}

impl Templates {
    /// Parses the embedded templates.
    pub fn embedded() -> anyhow::Result<Self> {
        Self::with_overrides(None)
    }

    /// Parses the embedded templates, replacing each one that `overrides` holds a file of
    /// the same path for (as written by `microframework templates export`).
    pub fn with_overrides(overrides: Option<&Path>) -> anyhow::Result<Self> {
        let mut files: Vec<(String, String)> = embedded_sources()?
            .into_iter()
            .map(|(path, text)| (path, text.to_owned()))
            .collect();
        let overrides = match overrides {
            Some(dir) => {
                apply_overrides(dir, &mut files)?;
                Some(
                    fs::canonicalize(dir)
                        .with_context(|| format!("cannot resolve {}", dir.display()))?,
                )
            }
            None => None,
        };
        let mut tera = Tera::default();
        tera.autoescape_on(Vec::new());
        let mut sources = Vec::new();
        let mut project = Vec::new();
        for (path, text) in &files {
            let name = path.strip_suffix(SUFFIX).unwrap_or(path);
            match name
                .strip_prefix(PROJECT_DIR)
                .and_then(|n| n.strip_prefix('/'))
            {
                Some(_) => {
                    let (front, body) =
                        split_front_matter(text).with_context(|| format!("template {path}"))?;
                    project.push(ProjectTemplate {
                        name: name.to_owned(),
                        front,
                    });
                    sources.push((name.to_owned(), body.to_owned()));
                }
                None => sources.push((name.to_owned(), text.to_owned())),
            }
        }
        tera.add_raw_templates(sources)
            .map_err(|err| anyhow!("embedded templates: {}", tera_error(&err)))?;
        project.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            tera,
            project,
            overrides,
        })
    }

    /// The directory whose templates replace built-in ones, if any (absolute).
    pub fn overrides_dir(&self) -> Option<&Path> {
        self.overrides.as_deref()
    }

    /// The project templates, sorted by name.
    pub fn project_templates(&self) -> &[ProjectTemplate] {
        &self.project
    }

    /// Renders the named template.
    pub fn render(&self, name: &str, context: &tera::Context) -> anyhow::Result<String> {
        self.tera
            .render(name, context)
            .map_err(|err| anyhow!("rendering {name}: {}", tera_error(&err)))
    }

    /// Renders a one-line template string such as a `to` path or a `when` condition.
    pub fn render_str(&self, template: &str, context: &tera::Context) -> anyhow::Result<String> {
        Tera::one_off(template, context, false)
            .map_err(|err| anyhow!("rendering `{template}`: {}", tera_error(&err)))
    }
}

/// Replaces the text of every file in `files` that `dir` holds a file of the same path for.
fn apply_overrides(dir: &Path, files: &mut [(String, String)]) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("templates directory {} does not exist", dir.display());
    }
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries =
            fs::read_dir(&current).with_context(|| format!("cannot read {}", current.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read {}", current.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if !relative.ends_with(SUFFIX) {
                continue;
            }
            let Some(slot) = files.iter_mut().find(|(name, _)| *name == relative) else {
                bail!(
                    "{}: no built-in template has this path, so it would never be used; `microframework templates list` shows the paths",
                    path.display()
                );
            };
            slot.1 = fs::read_to_string(&path)
                .with_context(|| format!("cannot read template {}", path.display()))?;
        }
    }
    Ok(())
}

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
        if let Some(condition) = &front.when {
            line.push_str(&format!(", when {condition}"));
        }
        println!("{line})");
    }
    println!("Input templates (rendered into the proto a project starts from):");
    for (path, _) in embedded_sources()? {
        if path.starts_with("input/") {
            println!("  {path}");
        }
    }
    Ok(())
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

fn all_files<'a>(dir: &'a Dir<'a>) -> Vec<&'a include_dir::File<'a>> {
    let mut files: Vec<_> = dir.files().collect();
    for sub in dir.dirs() {
        files.extend(all_files(sub));
    }
    files
}

fn split_front_matter(text: &str) -> anyhow::Result<(FrontMatter, &str)> {
    let Some(rest) = text.strip_prefix(FENCE).and_then(|r| r.strip_prefix('\n')) else {
        bail!("a project template must start with `{FENCE}` front matter");
    };
    let Some(end) = rest.find(&format!("\n{FENCE}\n")) else {
        bail!("front matter is not closed by `{FENCE}`");
    };
    let front = toml::from_str(&rest[..end]).context("invalid front matter")?;
    Ok((front, &rest[end + FENCE.len() + 2..]))
}

/// Tera errors keep their cause in a chain; show all of it.
fn tera_error(err: &tera::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_parse() {
        let templates = Templates::embedded().expect("embedded templates parse");
        assert!(templates
            .project_templates()
            .iter()
            .any(|t| t.name == "project/src/main.rs"));
    }

    #[test]
    fn front_matter_is_split_from_the_body() {
        let (front, body) =
            split_front_matter("+++\nto = \"a.rs\"\nowner = \"tool\"\n+++\nfn main() {}\n")
                .expect("valid");
        assert_eq!(front.to, "a.rs");
        assert_eq!(front.owner, Ownership::ToolOwned);
        assert_eq!(body, "fn main() {}\n");
    }

    #[test]
    fn missing_front_matter_is_an_error() {
        assert!(split_front_matter("fn main() {}\n").is_err());
    }
}
