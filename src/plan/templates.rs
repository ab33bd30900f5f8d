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

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use tera::Tera;

use crate::{
    input::{
        sandbox,
        sources::{tera_error, TemplateSources, SUFFIX},
    },
    plan::Ownership,
};

/// Directories of project templates inside `templates/`: files every project has, files
/// per service, and each feature's files (`features/<feature>/<kind>/`), planned only when
/// that kind of the feature is chosen.
const PROJECT_DIRS: &[&str] = &["base/", "service/", "features/"];
const FENCE: &str = "+++";

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

/// What a fragment's front matter says: the composition point of shared templates it goes
/// into (`into = "server_layers"`), where a shared template places `fragments.<point>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FragmentFront {
    /// The composition point.
    pub into: String,
}

/// A fragment: a feature's part of shared files, rendered when the feature is chosen.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// Tera name: the path under `templates/` without `.tera`.
    pub name: String,
    /// The composition point it goes into.
    pub point: String,
}

/// A template's front matter: the file it produces, or the fragment it is.
enum Front {
    File(FrontMatter),
    Fragment(FragmentFront),
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
    /// Tera name: the path under `templates/` without `.tera`.
    pub name: String,
    /// What the template declares about its output.
    pub front: FrontMatter,
}

/// All templates, parsed once.
pub struct Templates {
    tera: Tera,
    project: Vec<ProjectTemplate>,
    fragments: Vec<Fragment>,
    sources: TemplateSources,
    recorded_dir: Option<String>,
}

impl Templates {
    /// Parses the embedded templates.
    pub fn embedded() -> anyhow::Result<Self> {
        Self::new(&TemplateSources::embedded()?)
    }

    /// Parses the embedded templates, replacing each one that the directory of `overrides`
    /// holds a file of the same path for (as written by `microframework templates export`);
    /// the project records that directory as the second part of `overrides` (a path inside
    /// the project).
    pub fn with_overrides(overrides: Option<(&Path, &str)>) -> anyhow::Result<Self> {
        let mut templates = Self::new(&TemplateSources::with_overrides(
            overrides.map(|(dir, _)| dir),
        )?)?;
        if !templates.overrides().is_empty() {
            templates.recorded_dir = overrides.map(|(_, recorded)| recorded.to_owned());
        }
        Ok(templates)
    }

    /// Parses the project templates among `sources`, front matter and all.
    pub fn new(sources: &TemplateSources) -> anyhow::Result<Self> {
        let files = &sources.files;
        let mut tera = sandbox::tera();
        let mut named = Vec::new();
        let mut project = Vec::new();
        let mut fragments = Vec::new();
        for (path, text) in files {
            let name = path.strip_suffix(SUFFIX).unwrap_or(path);
            match PROJECT_DIRS.iter().find(|dir| name.starts_with(*dir)) {
                Some(_) if is_partial(name) => named.push((name.to_owned(), text.to_owned())),
                Some(_) => {
                    let (front, body) =
                        split_front_matter(text).with_context(|| format!("template {path}"))?;
                    match front {
                        Front::File(front) => project.push(ProjectTemplate {
                            name: name.to_owned(),
                            front,
                        }),
                        Front::Fragment(front) => fragments.push(Fragment {
                            name: name.to_owned(),
                            point: front.into,
                        }),
                    }
                    named.push((name.to_owned(), body.to_owned()));
                }
                None => {}
            }
        }
        check_points(&fragments, &named)?;
        tera.add_raw_templates(named)
            .map_err(|err| anyhow!("embedded templates: {}", tera_error(&err)))?;
        sandbox::check_recursion(&tera)?;
        project.sort_by(|a, b| a.name.cmp(&b.name));
        fragments.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            tera,
            project,
            fragments,
            sources: sources.clone(),
            recorded_dir: None,
        })
    }

    /// The overrides that replaced built-in templates: (path, text), sorted by path.
    pub fn overrides(&self) -> &[(String, String)] {
        &self.sources.overrides
    }

    /// Where the project records its override templates (`templates_dir`), if it has any.
    pub fn recorded_dir(&self) -> Option<&str> {
        self.recorded_dir.as_deref()
    }

    /// The template texts these were parsed from.
    pub fn sources(&self) -> &TemplateSources {
        &self.sources
    }

    /// The fragments, sorted by name.
    pub fn fragments(&self) -> &[Fragment] {
        &self.fragments
    }

    /// The project templates, sorted by name.
    pub fn project_templates(&self) -> &[ProjectTemplate] {
        &self.project
    }

    /// Renders the named template.
    pub fn render(&self, name: &str, context: &tera::Context) -> anyhow::Result<String> {
        sandbox::render(&self.tera, name, context)
    }

    /// Renders a one-line template string such as a `to` path or a `when` condition.
    pub fn render_str(&self, template: &str, context: &tera::Context) -> anyhow::Result<String> {
        sandbox::one_off(template, context).map_err(|err| anyhow!("rendering `{template}`: {err}"))
    }
}

/// A partial (`_method_stub.rs.tera`) has no front matter and produces no file of its own:
/// other templates include it, and the tool renders it for stubs.
fn is_partial(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .is_some_and(|file| file.starts_with('_'))
}

/// Every fragment's point must be placed by some template, or the fragment would vanish.
fn check_points(fragments: &[Fragment], templates: &[(String, String)]) -> anyhow::Result<()> {
    for fragment in fragments {
        let placed = format!("fragments.{}", fragment.point);
        if !templates.iter().any(|(_, body)| body.contains(&placed)) {
            let mut points: Vec<&str> = templates
                .iter()
                .flat_map(|(_, body)| {
                    body.match_indices("fragments.")
                        .map(|(at, _)| &body[at + 10..])
                })
                .map(|rest| {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    &rest[..end]
                })
                .collect();
            points.sort_unstable();
            points.dedup();
            bail!(
                "template {}{SUFFIX}: no template places `into = \"{}\"`; the composition points are: {}",
                fragment.name,
                fragment.point,
                points.join(", ")
            );
        }
    }
    Ok(())
}

fn split_front_matter(text: &str) -> anyhow::Result<(Front, &str)> {
    let Some(rest) = text.strip_prefix(FENCE).and_then(|r| r.strip_prefix('\n')) else {
        bail!("a project template must start with `{FENCE}` front matter");
    };
    let Some(end) = rest.find(&format!("\n{FENCE}\n")) else {
        bail!("front matter is not closed by `{FENCE}`");
    };
    let raw = &rest[..end];
    let table: toml::Table = toml::from_str(raw).context("invalid front matter")?;
    let front = if table.contains_key("into") {
        Front::Fragment(toml::from_str(raw).context("invalid front matter of a fragment")?)
    } else {
        Front::File(toml::from_str(raw).context("invalid front matter")?)
    };
    Ok((front, &rest[end + FENCE.len() + 2..]))
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
            .any(|t| t.name == "base/src/main.rs"));
    }

    #[test]
    fn every_feature_folder_is_the_folder_of_a_kind() {
        let folders: std::collections::BTreeSet<String> =
            crate::model::features::Features::all_combinations()
                .iter()
                .flat_map(|features| features.chosen())
                .map(|chosen| chosen.template_dir())
                .collect();
        let templates = Templates::embedded().expect("embedded templates parse");
        for template in templates.project_templates() {
            if !template.name.starts_with("features/") {
                continue;
            }
            assert!(
                folders.iter().any(|dir| template.name.starts_with(dir)),
                "{}: not in the folder of a feature's kind ({folders:?})",
                template.name
            );
        }
    }

    #[test]
    fn front_matter_is_split_from_the_body() {
        let (front, body) =
            split_front_matter("+++\nto = \"a.rs\"\nowner = \"tool\"\n+++\nfn main() {}\n")
                .expect("valid");
        let Front::File(front) = front else {
            panic!("a file's front matter")
        };
        assert_eq!(front.to, "a.rs");
        assert_eq!(front.owner, Ownership::ToolOwned);
        assert_eq!(body, "fn main() {}\n");
        let (front, _) =
            split_front_matter("+++\ninto = \"server_layers\"\n+++\nx\n").expect("valid");
        assert!(matches!(front, Front::Fragment(f) if f.into == "server_layers"));
    }

    #[test]
    fn a_fragment_for_a_point_no_template_places_is_refused() {
        let fragments = [Fragment {
            name: "features/a/b/into/x.rs".into(),
            point: "sever_layers".into(),
        }];
        let templates = [(
            "base/src/server.rs".to_owned(),
            "{% for f in fragments.server_layers %}{% endfor %}".to_owned(),
        )];
        let err = check_points(&fragments, &templates)
            .unwrap_err()
            .to_string();
        assert!(err.contains("into = \"sever_layers\""), "{err}");
        assert!(err.ends_with("points are: server_layers"), "{err}");
    }

    #[test]
    fn missing_front_matter_is_an_error() {
        assert!(split_front_matter("fn main() {}\n").is_err());
    }
}
