//! Configuration settings, each declared once (key, environment variable, type, default,
//! one-line doc) by the base project or by the feature that needs it. The generated config
//! struct, its defaults, its environment overrides, `config/default.toml` and the README's
//! table are all rendered from these declarations.

use serde::Serialize;

use super::RoleRule;

/// A section of the configuration: `[grpc]`, `[client.retry]`, or the root (key `""`).
#[derive(Debug, Clone, Copy)]
pub struct SectionSpec {
    /// Dotted key: `client.retry`; `""` for the root (`Config` itself).
    pub key: &'static str,
    /// The generated struct: `ClientOptions`; or the runtime crate's type, by its path
    /// (`microframework_runtime::client::RetryPolicy`), which the generated config re-exports
    /// in place of a struct of its own.
    pub rust_type: &'static str,
    /// One line saying what the section is for.
    pub doc: &'static str,
    /// The section's own settings, in file order.
    pub settings: &'static [Setting],
}

/// One setting of a section.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Key inside its section: `port`.
    pub key: &'static str,
    /// The environment variable that overrides it, if any.
    pub env: Option<&'static str>,
    /// Rust type of the field: `u16`.
    pub rust_type: &'static str,
    /// Default value.
    pub default: Value,
    /// One line saying what it does.
    pub doc: &'static str,
}

/// A setting's default value, written as Rust, TOML and in the README from one declaration.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// A string.
    Str(&'static str),
    /// A number literal, the same in Rust and TOML.
    Number(&'static str),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    Strings(&'static [&'static str]),
    /// The routes of the methods the tool implements that only read (`Get*`, `List*`,
    /// `Stream*`) and health's `Check`: safe to repeat.
    ReadMethods,
    /// An empty table of string lists, given as `[section.key]`; the README and
    /// `config/default.toml` show an example entry per application service.
    RoleTable,
    /// A value of an enum defined in the config module: the Rust variant and its TOML name.
    Variant(&'static str, &'static str),
    /// A Rust expression, its TOML value, and how the README shows it.
    Expression(&'static str, &'static str, &'static str),
}

/// A section as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigSection {
    /// Dotted key (`client.retry`), `""` for the root.
    pub key: String,
    /// Field of the parent section holding this one (`retry`).
    pub field: String,
    /// The struct's name.
    pub rust_type: String,
    /// The runtime crate's type the section is (`microframework_runtime::client::RetryPolicy`):
    /// re-exported, not generated.
    pub runtime_type: Option<String>,
    /// Whether `runtime_type` is set (for Tera's `filter`).
    pub is_runtime: bool,
    /// What the section is for.
    pub doc: String,
    /// Its settings.
    pub settings: Vec<ConfigSetting>,
    /// Sections nested in this one.
    pub children: Vec<ChildSection>,
    /// Whether `Self { .. }` of the defaults fits on one line (rustfmt's struct literal width).
    pub default_on_one_line: bool,
    /// Whether every default is its type's own (`#[derive(Default)]` then, as clippy asks).
    pub derives_default: bool,
}

/// A section nested in another, as a field of the parent struct.
#[derive(Debug, Clone, Serialize)]
pub struct ChildSection {
    /// The field: `retry`.
    pub field: String,
    /// Its struct: `RetryPolicy`.
    pub rust_type: String,
    /// What it is for.
    pub doc: String,
}

/// A setting as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigSetting {
    /// The field and TOML key: `port`.
    pub key: String,
    /// Dotted key from the root: `grpc.port`.
    pub path: String,
    /// Rust type of the field.
    pub rust_type: String,
    /// The overriding environment variable, if any.
    pub env: Option<String>,
    /// What it does.
    pub doc: String,
    /// The default as a Rust expression, laid out as rustfmt would at a field of the
    /// `Default` impl (12 spaces in).
    pub rust_default: String,
    /// The default as a TOML value (empty for tables).
    pub toml_default: String,
    /// The default as the README shows it (empty: none).
    pub readme_default: String,
    /// Whether the setting is a table (`[auth.methods]`) rather than a key.
    pub is_table: bool,
    /// Commented example entries shown under a table's header.
    pub examples: Vec<String>,
    /// Whether the default is its type's own (`String::new()`, `0`, `false`, ...).
    #[serde(skip)]
    pub is_type_default: bool,
}

/// Width of a line rustfmt keeps.
const MAX_WIDTH: usize = 100;
/// rustfmt's widest one-line struct literal body (`struct_lit_width`).
const STRUCT_LITERAL_WIDTH: usize = 18;
/// rustfmt's widest one-line array, macro or call argument list (`array_width`,
/// `fn_call_width`).
const ARRAY_WIDTH: usize = 60;

/// What a project brings to the declared defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProjectDefaults<'a> {
    /// The application's full service names, for table examples.
    pub services: &'a [String],
    /// The roles its write methods need ([`Value::RoleTable`]).
    pub role_rules: &'a [RoleRule],
    /// The routes of its read methods ([`Value::ReadMethods`]).
    pub read_methods: &'a [String],
}

/// Builds the sections the templates render from the declared ones, each placed after its
/// parent, with the defaults `project` decides.
pub fn build_sections(specs: &[SectionSpec], project: ProjectDefaults<'_>) -> Vec<ConfigSection> {
    let mut ordered = Vec::new();
    place(specs, "", &mut ordered);
    ordered
        .into_iter()
        .map(|spec| {
            let children = specs
                .iter()
                .filter(|child| !child.key.is_empty() && parent_of(child.key) == spec.key)
                .map(|child| ChildSection {
                    field: last_segment(child.key).to_owned(),
                    rust_type: type_name(child.rust_type).to_owned(),
                    doc: child.doc.to_owned(),
                })
                .collect::<Vec<_>>();
            let settings: Vec<ConfigSetting> = spec
                .settings
                .iter()
                .map(|setting| build_setting(spec.key, setting, project))
                .collect();
            let body: Vec<String> = settings
                .iter()
                .map(|s| format!("{}: {}", s.key, s.rust_default))
                .chain(
                    children
                        .iter()
                        .map(|c| format!("{}: {}::default()", c.field, c.rust_type)),
                )
                .collect();
            let body = body.join(", ");
            let runtime_type = spec
                .rust_type
                .contains("::")
                .then(|| spec.rust_type.to_owned());
            ConfigSection {
                derives_default: settings.iter().all(|s| s.is_type_default),
                key: spec.key.to_owned(),
                field: last_segment(spec.key).to_owned(),
                rust_type: type_name(spec.rust_type).to_owned(),
                is_runtime: runtime_type.is_some(),
                runtime_type,
                doc: spec.doc.to_owned(),
                default_on_one_line: body.len() <= STRUCT_LITERAL_WIDTH && !body.contains('\n'),
                settings,
                children,
            }
        })
        .collect()
}

/// Depth first: a section, then the sections nested in it, in declaration order.
fn place<'a>(specs: &'a [SectionSpec], key: &str, ordered: &mut Vec<&'a SectionSpec>) {
    if let Some(spec) = specs.iter().find(|spec| spec.key == key) {
        ordered.push(spec);
    }
    for child in specs
        .iter()
        .filter(|child| !child.key.is_empty() && parent_of(child.key) == key)
    {
        place(specs, child.key, ordered);
    }
}

/// The last segment of a type's path: `RetryPolicy`.
fn type_name(rust_type: &str) -> &str {
    rust_type.rsplit("::").next().unwrap_or(rust_type)
}

fn parent_of(key: &str) -> &str {
    key.rsplit_once('.').map_or("", |(parent, _)| parent)
}

fn last_segment(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn build_setting(section: &str, setting: &Setting, project: ProjectDefaults<'_>) -> ConfigSetting {
    let ProjectDefaults {
        services,
        role_rules,
        read_methods,
    } = project;
    let read_methods: Vec<&str> = read_methods.iter().map(String::as_str).collect();
    let items: &[&str] = match setting.default {
        Value::ReadMethods => &read_methods,
        Value::Strings(items) => items,
        _ => &[],
    };
    let path = if section.is_empty() {
        setting.key.to_owned()
    } else {
        format!("{section}.{}", setting.key)
    };
    let (rust_default, toml_default, readme_default) = match setting.default {
        Value::Str("") => ("String::new()".to_owned(), "\"\"".to_owned(), String::new()),
        Value::Str(text) => (
            format!("{}.to_owned()", quoted(text)),
            quoted(text),
            format!("`{text}`"),
        ),
        Value::Number(literal) => (
            literal.to_owned(),
            literal.to_owned(),
            format!("`{literal}`"),
        ),
        Value::Bool(on) => (on.to_string(), on.to_string(), format!("`{on}`")),
        Value::Strings(_) | Value::ReadMethods if items.is_empty() => {
            ("Vec::new()".to_owned(), "[]".to_owned(), String::new())
        }
        Value::Strings(_) | Value::ReadMethods => (
            string_vec(items, setting.key),
            toml_array(items, setting.key),
            items
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::RoleTable if role_rules.is_empty() => (
            "std::collections::BTreeMap::new()".to_owned(),
            String::new(),
            String::new(),
        ),
        Value::RoleTable => (
            "crate::auth::default_method_roles()".to_owned(),
            String::new(),
            "the `<resource>:write` role for write methods".to_owned(),
        ),
        Value::Variant(variant, name) => (
            format!("{}::{variant}", setting.rust_type),
            quoted(name),
            format!("`{name}`"),
        ),
        Value::Expression(rust, toml, shown) => {
            (rust.to_owned(), toml.to_owned(), shown.to_owned())
        }
    };
    let is_table = matches!(setting.default, Value::RoleTable);
    let examples = if is_table {
        role_rules
            .iter()
            .map(|rule| format!("\"{}\" = [\"{}\"]", rule.route, rule.role))
            .chain(
                services
                    .iter()
                    .map(|service| format!("# \"/{service}/\" = [\"admin\"]")),
            )
            .collect()
    } else {
        Vec::new()
    };
    let is_type_default = (is_table && role_rules.is_empty())
        || matches!(
            setting.default,
            Value::Str("") | Value::Bool(false) | Value::Number("0")
        )
        || (matches!(setting.default, Value::Strings(_) | Value::ReadMethods) && items.is_empty());
    ConfigSetting {
        key: setting.key.to_owned(),
        rust_type: setting.rust_type.to_owned(),
        env: setting.env.map(str::to_owned),
        doc: setting.doc.to_owned(),
        rust_default,
        toml_default,
        readme_default,
        is_table,
        examples,
        is_type_default,
        path,
    }
}

/// `vec!["a".to_owned(), ...]`, on one line or one item a line as rustfmt lays it out at a
/// field of a `Default` impl.
fn string_vec(items: &[&str], key: &str) -> String {
    let owned: Vec<String> = items
        .iter()
        .map(|item| format!("{}.to_owned()", quoted(item)))
        .collect();
    let one_line = owned.join(", ");
    let indent = 12 + key.len() + ": vec![".len();
    if one_line.len() <= ARRAY_WIDTH && indent + one_line.len() + 2 <= MAX_WIDTH {
        return format!("vec![{one_line}]");
    }
    let mut text = String::from("vec![\n");
    for item in items {
        // rustfmt moves `.to_owned()` to a line of its own when the item does not fit.
        let literal = quoted(item);
        if 16 + literal.len() + ".to_owned(),".len() <= MAX_WIDTH {
            text.push_str(&format!("                {literal}.to_owned(),\n"));
        } else {
            text.push_str(&format!(
                "                {literal}\n                    .to_owned(),\n"
            ));
        }
    }
    text.push_str("            ]");
    text
}

/// A TOML array of strings: on one line when `key = [...]` fits in [`MAX_WIDTH`], else one
/// item per line.
fn toml_array(items: &[&str], key: &str) -> String {
    let quoted_items: Vec<String> = items.iter().map(|item| quoted(item)).collect();
    let one_line = format!("[{}]", quoted_items.join(", "));
    if key.len() + " = ".len() + one_line.len() <= MAX_WIDTH {
        return one_line;
    }
    let lines: String = quoted_items
        .iter()
        .map(|item| format!("    {item},\n"))
        .collect();
    format!("[\n{lines}]")
}

/// A string as a Rust and TOML literal (the two agree for the characters used here).
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

/// The declared defaults of section `key` of `specs`, as `config/default.toml` writes them,
/// read back as `T`: a test that the declarations of a section whose type is the runtime's
/// match that type's `Default`.
#[cfg(test)]
pub fn declared<T: serde::de::DeserializeOwned>(specs: &[SectionSpec], key: &str) -> T {
    let spec = specs
        .iter()
        .find(|spec| spec.key == key)
        .expect("a declared section");
    let settings: Vec<ConfigSetting> = spec
        .settings
        .iter()
        .map(|setting| build_setting(key, setting, ProjectDefaults::default()))
        .collect();
    let keys = settings.iter().filter(|setting| !setting.is_table);
    let tables = settings.iter().filter(|setting| setting.is_table);
    let text: String = keys
        .map(|setting| format!("{} = {}\n", setting.key, setting.toml_default))
        .chain(tables.map(|table| format!("[{}]\n{}\n", table.key, table.examples.join("\n"))))
        .collect();
    toml::from_str(&text).unwrap_or_else(|err| panic!("[{key}]: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTIONS: &[SectionSpec] = &[
        SectionSpec {
            key: "client.retry",
            rust_type: "RetryPolicy",
            doc: "Retries.",
            settings: &[Setting {
                key: "max_attempts",
                env: Some("CLIENT_MAX_ATTEMPTS"),
                rust_type: "u32",
                default: Value::Number("3"),
                doc: "Attempts.",
            }],
        },
        SectionSpec {
            key: "",
            rust_type: "Config",
            doc: "All.",
            settings: &[],
        },
        SectionSpec {
            key: "client",
            rust_type: "ClientOptions",
            doc: "Client.",
            settings: &[Setting {
                key: "public_methods",
                env: None,
                rust_type: "Vec<String>",
                default: Value::Strings(&["/grpc.health.v1.Health/", "/grpc.reflection."]),
                doc: "Public.",
            }],
        },
    ];

    #[test]
    fn sections_come_after_their_parents_and_know_their_children() {
        let sections = build_sections(SECTIONS, ProjectDefaults::default());
        let keys: Vec<_> = sections.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["", "client", "client.retry"]);
        assert_eq!(sections[0].children[0].field, "client");
        assert_eq!(sections[1].children[0].rust_type, "RetryPolicy");
        assert_eq!(sections[2].settings[0].path, "client.retry.max_attempts");
    }

    #[test]
    fn one_declaration_gives_rust_toml_and_readme_defaults() {
        let sections = build_sections(SECTIONS, ProjectDefaults::default());
        let list = &sections[1].settings[0];
        assert_eq!(
            list.toml_default,
            "[\"/grpc.health.v1.Health/\", \"/grpc.reflection.\"]"
        );
        assert!(
            list.rust_default.starts_with("vec![\n"),
            "{}",
            list.rust_default
        );
        assert_eq!(
            list.readme_default,
            "`/grpc.health.v1.Health/`, `/grpc.reflection.`"
        );
        assert!(
            sections[2].default_on_one_line,
            "`Self {{ max_attempts: 3 }}`"
        );
        assert!(!sections[1].derives_default);
    }
}
