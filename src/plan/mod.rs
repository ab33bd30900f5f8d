//! Plan stage: every file the project consists of, with its path, where its contents come
//! from, and who owns it.

pub mod templates;

use serde::Deserialize;

pub use crate::input::project_file::GENERATED_HEADER;
use crate::{
    input::{sources, CompiledProtos, Origin},
    model::{features::FEATURES_DIR, Project},
};
use templates::{Each, Templates};

/// Who owns a generated file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Ownership {
    /// Rewritten by every run of the tool; starts with [`GENERATED_HEADER`].
    #[serde(rename = "tool")]
    ToolOwned,
    /// Written once, then left to the user.
    #[serde(rename = "user")]
    UserOwned,
}

impl Ownership {
    /// `tool` or `user`, as listings print it.
    pub fn label(self) -> &'static str {
        match self {
            Self::ToolOwned => "tool",
            Self::UserOwned => "user",
        }
    }
}

/// Where a planned file's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A project template, rendered with the project (and, for per-service templates, the
    /// service at this index bound as `service`).
    Template {
        /// Tera template name.
        name: String,
        /// Index into `Project::services` for per-service templates.
        service: Option<usize>,
    },
    /// Contents copied as they are (the proto sources).
    Verbatim(String),
}

/// One file of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Path relative to the project root, with `/` separators.
    pub path: String,
    /// Who owns it.
    pub ownership: Ownership,
    /// Where its contents come from.
    pub source: Source,
}

/// Every file of the project, sorted by path.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The files.
    pub files: Vec<PlannedFile>,
}

/// Plans the project: each template's front matter decides its path(s) and ownership; the
/// proto sources are copied under `proto/`: the user's belong to the user, the bundled
/// third-party ones to the tool.
pub fn plan_project(
    project: &Project,
    protos: &CompiledProtos,
    templates: &Templates,
) -> anyhow::Result<Plan> {
    let contexts = TemplateContexts::new(project)?;
    let mut files = Vec::new();
    for template in templates.project_templates() {
        if template.name.starts_with(FEATURES_DIR)
            && !project
                .chosen
                .iter()
                .any(|chosen| template.name.starts_with(&chosen.template_dir()))
        {
            continue;
        }
        let bindings: Vec<Option<usize>> = match template.front.each {
            None => vec![None],
            Some(Each::Service) => (0..project.services.len()).map(Some).collect(),
        };
        for service in bindings {
            let context = contexts.get(service);
            if let Some(condition) = &template.front.when {
                let test = format!("{{% if {condition} %}}yes{{% endif %}}");
                if templates.render_str(&test, &context)? != "yes" {
                    continue;
                }
            }
            files.push(PlannedFile {
                path: templates.render_str(&template.front.to, &context)?,
                ownership: template.front.owner,
                source: Source::Template {
                    name: template.name.clone(),
                    service,
                },
            });
        }
    }
    for proto in &protos.files {
        files.push(PlannedFile {
            path: format!("proto/{}", proto.name),
            ownership: match proto.origin {
                Origin::User => Ownership::UserOwned,
                Origin::Bundled | Origin::Derived => Ownership::ToolOwned,
            },
            source: Source::Verbatim(proto.source.clone()),
        });
    }
    // The runtime crate, as the tool holds it: the tool's, rewritten when the tool's changes.
    for (path, source) in sources::runtime_files() {
        files.push(PlannedFile {
            path: format!("{}/{path}", sources::RUNTIME_DIR),
            ownership: Ownership::ToolOwned,
            source: Source::Verbatim(source.to_owned()),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = files.windows(2).find(|pair| pair[0].path == pair[1].path) {
        anyhow::bail!(
            "two files of the project would both be written to {}",
            pair[0].path
        );
    }
    Ok(Plan { files })
}

/// Tera contexts for the templates, built once per run: project-wide templates see the
/// whole `project`; per-service templates see `service` and the project without its service
/// list, so rendering N services costs O(N), not O(N²).
pub struct TemplateContexts {
    whole: tera::Context,
    header: tera::Context,
    services: Vec<tera::Value>,
}

impl TemplateContexts {
    /// Serializes the project once.
    pub fn new(project: &Project) -> anyhow::Result<Self> {
        let mut whole = tera::Context::new();
        whole.insert("project", project);
        // Per-service templates see the project without its per-method lists, which would
        // make the contexts of N services cost O(N^2).
        let header_project = Project {
            services: Vec::new(),
            method_types: Vec::new(),
            config_sections: Vec::new(),
            dependencies: Vec::new(),
            dev_dependencies: Vec::new(),
            ..project.clone()
        };
        let mut header = tera::Context::new();
        header.insert("project", &header_project);
        let services = project
            .services
            .iter()
            .map(tera::to_value)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            whole,
            header,
            services,
        })
    }

    /// Adds `value` as `key` to every template's context.
    pub fn insert(&mut self, key: &str, value: &impl serde::Serialize) {
        self.whole.insert(key, value);
        self.header.insert(key, value);
    }

    /// The context for a template: the whole project, or one service of it.
    pub fn get(&self, service: Option<usize>) -> tera::Context {
        match service {
            None => self.whole.clone(),
            Some(index) => {
                let mut context = self.header.clone();
                context.insert("service", &self.services[index]);
                context
            }
        }
    }
}
