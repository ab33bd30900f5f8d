//! Service specs: a TOML description of a service's resources, validated with file, line and
//! column in every error, and turned into an idiomatic proto3 file.
//!
//! ```toml
//! [service]
//! name = "library"              # gives LibraryService
//! package = "acme.library.v1"   # optional; default "<name>.v1"
//!
//! [[resources]]
//! name = "Book"
//! operations = ["get", "create", "update", "delete", "list", "stream"]   # optional; all
//!
//! [[resources.fields]]
//! name = "title"
//! type = "string"          # string int32 int64 bool double bytes timestamp enum <Resource>
//! required = true          # strings, bytes, messages and repeated fields only
//! max_length = 200         # strings (characters) and bytes; default 16384 and 1048576
//! ```

use std::{collections::BTreeSet, ops::Range, path::Path};

use anyhow::anyhow;
use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::{input::line_column, naming};

/// Operations a resource can offer, in the order their RPCs are declared.
pub const OPERATIONS: &[&str] = &["get", "create", "update", "delete", "list", "stream"];

/// Scalar field types and their proto spelling.
const SCALARS: &[(&str, &str)] = &[
    ("string", "string"),
    ("int32", "int32"),
    ("int64", "int64"),
    ("bool", "bool"),
    ("double", "double"),
    ("bytes", "bytes"),
    ("timestamp", "google.protobuf.Timestamp"),
];

/// Field names every resource has already.
const RESERVED_FIELDS: &[&str] = &["id", "create_time", "update_time"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    service: RawService,
    #[serde(default)]
    resources: Vec<RawResource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    #[serde(default)]
    package: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    name: Spanned<String>,
    #[serde(default)]
    plural: Option<Spanned<String>>,
    #[serde(default)]
    operations: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    fields: Vec<RawField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: Spanned<String>,
    #[serde(rename = "type")]
    field_type: Spanned<String>,
    #[serde(default)]
    repeated: Option<Spanned<bool>>,
    #[serde(default)]
    optional: Option<Spanned<bool>>,
    #[serde(default)]
    required: Option<Spanned<bool>>,
    #[serde(default)]
    values: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    max_length: Option<Spanned<u64>>,
}

/// The longest string (in characters) a spec's field takes unless it says otherwise.
pub const DEFAULT_MAX_STRING_CHARS: u64 = 16 * 1024;
/// The longest bytes value a spec's field takes unless it says otherwise.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

/// A validated service spec, with every proto name decided.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSpec {
    /// Proto package: `acme.library.v1`.
    pub package: String,
    /// Proto service: `LibraryService`.
    pub service: String,
    /// Import path of the proto file: `acme/library/v1/library_service.proto`.
    pub proto_path: String,
    /// The operations any resource offers, in [`OPERATIONS`] order.
    pub operations: Vec<String>,
    /// The resources, in spec order.
    pub resources: Vec<ResourceSpec>,
}

/// A resource of the spec.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceSpec {
    /// Names derived from the resource name.
    pub names: naming::ResourceNames,
    /// Operations offered, in [`OPERATIONS`] order.
    pub operations: Vec<String>,
    /// The user's fields (without `id` and the timestamps).
    pub fields: Vec<FieldSpec>,
    /// Enums declared by the resource's enum fields.
    pub enums: Vec<EnumSpec>,
}

/// A field of a resource.
#[derive(Debug, Clone, Serialize)]
pub struct FieldSpec {
    /// lower_snake name.
    pub name: String,
    /// The name as a Rust identifier (keywords escaped).
    pub ident: String,
    /// Kind: `scalar`, `timestamp`, `enum` or `resource`.
    pub kind: String,
    /// The spec's type (`string`, `timestamp`, `enum`, `Author`).
    pub spec_type: String,
    /// Proto type: `string`, `google.protobuf.Timestamp`, `BookStatus`, `Author`.
    pub proto_type: String,
    /// `repeated`.
    pub repeated: bool,
    /// proto3 `optional`.
    pub optional: bool,
    /// The handler refuses empty values.
    pub required: bool,
    /// Strings: most characters; bytes: most bytes (of each element when repeated); the
    /// handler refuses longer values. None for other types.
    pub max_length: Option<u64>,
}

/// An enum declared by an enum field.
#[derive(Debug, Clone, Serialize)]
pub struct EnumSpec {
    /// PascalCase name: `BookStatus`.
    pub name: String,
    /// Value names, prefixed and UPPER_SNAKE, after the `_UNSPECIFIED` zero value.
    pub values: Vec<String>,
    /// The zero value: `BOOK_STATUS_UNSPECIFIED`.
    pub zero: String,
}

/// A spec error at a place in the file.
struct SpecError {
    span: Option<Range<usize>>,
    message: String,
}

fn at<T>(spanned: &Spanned<T>, message: impl Into<String>) -> SpecError {
    SpecError {
        span: Some(spanned.span()),
        message: message.into(),
    }
}

/// Reads and validates a spec file.
pub fn load(path: &Path) -> anyhow::Result<ServiceSpec> {
    let text = super::tree::read_named(path, "spec")?;
    from_text(path, &text)
}

/// The most resources one spec may declare: each makes five methods, a store and their
/// tests, and the files of a few thousand outgrow what the tool writes.
pub const MAX_RESOURCES: usize = 500;

/// The most fields one resource may declare.
pub const MAX_FIELDS: usize = 200;

/// Validates spec text; errors name `path` with line and column.
pub fn from_text(path: &Path, text: &str) -> anyhow::Result<ServiceSpec> {
    parse(text).map_err(|err| {
        let place = match err.span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("{}:{line}:{column}", path.display())
            }
            None => path.display().to_string(),
        };
        anyhow!("{place}: {}", err.message)
    })
}

/// Parses and validates spec text; errors carry the span they are about.
fn parse(text: &str) -> Result<ServiceSpec, SpecError> {
    let raw: RawSpec = toml::from_str(text).map_err(|err| SpecError {
        span: err.span(),
        message: err.message().trim().to_owned(),
    })?;
    validate(raw)
}

fn validate(raw: RawSpec) -> Result<ServiceSpec, SpecError> {
    let service_name = raw.service.name.get_ref();
    let base = service_name.to_snake_case();
    let base = base.strip_suffix("_service").unwrap_or(&base).to_owned();
    if base.is_empty() || !base.starts_with(|c: char| c.is_ascii_alphabetic()) || !is_snake(&base) {
        return Err(at(
            &raw.service.name,
            format!("service name `{service_name}` must be a word or words such as `library` or `LibraryService`"),
        ));
    }
    let package = match &raw.service.package {
        Some(package) => {
            check_package(package.get_ref()).map_err(|why| at(package, why))?;
            package.get_ref().clone()
        }
        None => format!("{base}.v1"),
    };
    let service = format!("{}Service", base.to_upper_camel_case());
    if raw.resources.is_empty() {
        return Err(SpecError {
            span: None,
            message: "no [[resources]]: a spec needs at least one resource".to_owned(),
        });
    }

    if let Some(extra) = raw.resources.get(MAX_RESOURCES) {
        return Err(at(
            &extra.name,
            format!("more than {MAX_RESOURCES} resources; microframework generates at most {MAX_RESOURCES} for one service (split the API into services)"),
        ));
    }
    let mut names = BTreeSet::new();
    for resource in &raw.resources {
        let name = resource.name.get_ref();
        if !is_pascal(name) {
            return Err(at(
                &resource.name,
                format!("resource name `{name}` must be PascalCase, such as `Book`"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(at(
                &resource.name,
                format!("resource `{name}` is declared twice"),
            ));
        }
    }

    let mut resources: Vec<ResourceSpec> = Vec::new();
    for resource in &raw.resources {
        let validated = validate_resource(resource, &names)?;
        // `Category` and `Categorie` both list `Categories`, so the proto would define
        // `ListCategoriesRequest` twice; `HttpLog` and `HTTPLog` share the module `http_log`.
        let clash = resources.iter().find_map(|r| {
            let what = if r.names.plural == validated.names.plural {
                format!("the plural `{}`", r.names.plural)
            } else if r.names.snake == validated.names.snake {
                format!("the module name `{}`", r.names.snake)
            } else {
                return None;
            };
            Some((r, what))
        });
        if let Some((other, what)) = clash {
            return Err(at(
                resource.plural.as_ref().unwrap_or(&resource.name),
                format!(
                    "resource `{}` has {what}, as `{}` has; rename one of them, or give it another plural with `plural = \"...\"`",
                    validated.names.name, other.names.name
                ),
            ));
        }
        resources.push(validated);
    }
    let proto_path = format!(
        "{}/{}.proto",
        package.replace('.', "/"),
        service.to_snake_case()
    );
    let operations = OPERATIONS
        .iter()
        .filter(|op| {
            resources
                .iter()
                .any(|r| r.operations.iter().any(|o| o == *op))
        })
        .map(|op| op.to_string())
        .collect();
    Ok(ServiceSpec {
        package,
        service,
        proto_path,
        operations,
        resources,
    })
}

fn validate_resource(
    raw: &RawResource,
    resources: &BTreeSet<String>,
) -> Result<ResourceSpec, SpecError> {
    let name = raw.name.get_ref();
    let plural = match &raw.plural {
        Some(plural) if is_pascal(plural.get_ref()) => plural.get_ref().clone(),
        Some(plural) => {
            return Err(at(
                plural,
                format!("plural `{}` must be PascalCase", plural.get_ref()),
            ))
        }
        None => naming::pluralize(name),
    };
    let operations = match &raw.operations {
        None => OPERATIONS.iter().map(|op| op.to_string()).collect(),
        Some(listed) => {
            let mut chosen = BTreeSet::new();
            for op in listed {
                if !OPERATIONS.contains(&op.get_ref().as_str()) {
                    return Err(at(
                        op,
                        format!(
                            "unknown operation `{}`; expected one of {}",
                            op.get_ref(),
                            OPERATIONS.join(", ")
                        ),
                    ));
                }
                if !chosen.insert(op.get_ref().clone()) {
                    return Err(at(
                        op,
                        format!("operation `{}` is listed twice", op.get_ref()),
                    ));
                }
            }
            OPERATIONS
                .iter()
                .filter(|op| chosen.contains(**op))
                .map(|op| op.to_string())
                .collect()
        }
    };

    if let Some(extra) = raw.fields.get(MAX_FIELDS) {
        return Err(at(
            &extra.name,
            format!("`{name}` has more than {MAX_FIELDS} fields, the most microframework generates for one resource"),
        ));
    }
    let mut fields = Vec::new();
    let mut enums = Vec::new();
    let mut seen = BTreeSet::new();
    for field in &raw.fields {
        let field_name = field.name.get_ref();
        if !is_snake(field_name) || !field_name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(at(
                &field.name,
                format!("field name `{field_name}` must be lower_snake_case, such as `page_count`"),
            ));
        }
        if RESERVED_FIELDS.contains(&field_name.as_str()) {
            return Err(at(
                &field.name,
                format!("field `{field_name}` is added to every resource already (id, create_time, update_time)"),
            ));
        }
        if !seen.insert(field_name.clone()) {
            return Err(at(
                &field.name,
                format!("field `{field_name}` is declared twice in `{name}`"),
            ));
        }
        let spec_type = field.field_type.get_ref().as_str();
        let (kind, proto_type) = if let Some((_, proto)) =
            SCALARS.iter().find(|(t, _)| *t == spec_type)
        {
            let kind = if spec_type == "timestamp" {
                "timestamp"
            } else {
                "scalar"
            };
            (kind, proto.to_string())
        } else if spec_type == "enum" {
            let enum_name = format!("{name}{}", field_name.to_upper_camel_case());
            let Some(values) = &field.values else {
                return Err(at(&field.field_type, format!("enum field `{field_name}` needs `values`, such as [\"active\", \"archived\"]")));
            };
            let mut value_names = Vec::new();
            let prefix = enum_name.to_shouty_snake_case();
            for value in values.get_ref() {
                if !is_snake(value.get_ref())
                    || !value
                        .get_ref()
                        .starts_with(|c: char| c.is_ascii_lowercase())
                {
                    return Err(at(
                        value,
                        format!("enum value `{}` must be lower_snake_case", value.get_ref()),
                    ));
                }
                let full = format!("{prefix}_{}", value.get_ref().to_shouty_snake_case());
                if value.get_ref() == "unspecified" || value_names.contains(&full) {
                    return Err(at(
                        value,
                        format!("enum value `{}` is repeated or reserved", value.get_ref()),
                    ));
                }
                value_names.push(full);
            }
            if value_names.is_empty() {
                return Err(at(values, "an enum needs at least one value"));
            }
            enums.push(EnumSpec {
                zero: format!("{prefix}_UNSPECIFIED"),
                name: enum_name.clone(),
                values: value_names,
            });
            ("enum", enum_name)
        } else if resources.contains(spec_type) {
            ("resource", spec_type.to_owned())
        } else {
            let known: Vec<&str> = resources.iter().map(String::as_str).collect();
            return Err(at(
                &field.field_type,
                format!(
                    "unknown type `{spec_type}` for field `{field_name}`; expected string, int32, int64, bool, double, bytes, timestamp, enum or a resource ({})",
                    known.join(", ")
                ),
            ));
        };
        if spec_type != "enum" {
            if let Some(values) = &field.values {
                return Err(at(
                    values,
                    format!(
                        "`values` only applies to enum fields, and `{field_name}` is {spec_type}"
                    ),
                ));
            }
        }
        let flag = |value: &Option<Spanned<bool>>| value.as_ref().is_some_and(|v| *v.get_ref());
        let repeated = flag(&field.repeated);
        let optional = flag(&field.optional);
        let required = flag(&field.required);
        // Where a flag error points: at the flag when it is set, else at the field's name.
        let flag_span = |value: &Option<Spanned<bool>>| match value {
            Some(value) => value.span(),
            None => field.name.span(),
        };
        if repeated && optional {
            return Err(SpecError {
                span: Some(flag_span(&field.optional)),
                message: format!("field `{field_name}` cannot be both repeated and optional"),
            });
        }
        if required && optional {
            return Err(SpecError {
                span: Some(flag_span(&field.required)),
                message: format!("field `{field_name}` cannot be both required and optional"),
            });
        }
        let checkable = repeated
            || matches!(spec_type, "string" | "bytes")
            || kind != "scalar" && kind != "enum";
        if required && !checkable {
            return Err(SpecError {
                span: Some(flag_span(&field.required)),
                message: format!("`required` applies to string, bytes, message and repeated fields; a {spec_type} always has a value"),
            });
        }
        if kind == "resource" && spec_type == name && !repeated {
            return Err(at(
                &field.field_type,
                format!("field `{field_name}` makes `{name}` contain itself; make it repeated"),
            ));
        }
        let max_length = match (spec_type, &field.max_length) {
            ("string", None) => Some(DEFAULT_MAX_STRING_CHARS),
            ("bytes", None) => Some(DEFAULT_MAX_BYTES),
            ("string" | "bytes", Some(max)) if *max.get_ref() == 0 => {
                return Err(at(max, "`max_length` must be at least 1"));
            }
            ("string" | "bytes", Some(max)) => Some(*max.get_ref()),
            (_, None) => None,
            (_, Some(max)) => {
                return Err(at(
                    max,
                    format!("`max_length` applies to string and bytes fields, and `{field_name}` is {spec_type}"),
                ));
            }
        };
        fields.push(FieldSpec {
            ident: naming::rust_ident(field_name),
            name: field_name.clone(),
            kind: kind.to_owned(),
            spec_type: spec_type.to_owned(),
            proto_type,
            repeated,
            optional,
            required,
            max_length,
        });
    }
    let snake = name.to_snake_case();
    let plural_snake = plural.to_snake_case();
    Ok(ResourceSpec {
        names: naming::ResourceNames {
            name: name.clone(),
            plural: plural.clone(),
            snake_ident: naming::rust_ident(&snake),
            plural_snake_ident: naming::rust_ident(&plural_snake),
            snake,
            plural_snake,
        },
        operations,
        fields,
        enums,
    })
}

fn check_package(package: &str) -> Result<(), String> {
    let segments: Vec<&str> = package.split('.').collect();
    let well_formed = segments
        .iter()
        .all(|s| !s.is_empty() && s.starts_with(|c: char| c.is_ascii_lowercase()) && is_snake(s));
    if !well_formed {
        return Err(format!("package `{package}` must be lower_snake words joined by dots, such as `acme.library.v1`"));
    }
    let last = segments.last().copied().unwrap_or_default();
    if segments.len() < 2 || !is_version(last) {
        return Err(format!(
            "package `{package}` must end with a version such as `v1` or `v1beta1`"
        ));
    }
    Ok(())
}

fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return false;
    }
    let tail = &rest[digits..];
    tail.is_empty()
        || ["alpha", "beta"].iter().any(|stage| {
            tail.strip_prefix(stage)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

fn is_snake(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !word.contains("__")
        && !word.ends_with('_')
}

fn is_pascal(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric())
        && word.to_upper_camel_case() == word
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIBRARY: &str = r#"[service]
name = "library"
package = "acme.library.v1"

[[resources]]
name = "Author"
operations = ["get", "create", "list"]

[[resources.fields]]
name = "display_name"
type = "string"
required = true

[[resources]]
name = "Book"

[[resources.fields]]
name = "title"
type = "string"
required = true

[[resources.fields]]
name = "authors"
type = "Author"
repeated = true

[[resources.fields]]
name = "status"
type = "enum"
values = ["available", "on_loan"]

[[resources.fields]]
name = "rating"
type = "double"
optional = true
"#;

    fn error(text: &str) -> String {
        let err = parse(text).expect_err("an error");
        match err.span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("{line}:{column}: {}", err.message)
            }
            None => err.message,
        }
    }

    #[test]
    fn a_valid_spec_gets_its_names() {
        let spec = parse(LIBRARY).ok().expect("valid");
        assert_eq!(spec.service, "LibraryService");
        assert_eq!(spec.proto_path, "acme/library/v1/library_service.proto");
        let author = &spec.resources[0];
        assert_eq!(author.operations, ["get", "create", "list"]);
        let book = &spec.resources[1];
        assert_eq!(book.operations.len(), 6);
        assert_eq!(book.enums[0].name, "BookStatus");
        assert_eq!(book.enums[0].zero, "BOOK_STATUS_UNSPECIFIED");
        assert_eq!(
            book.enums[0].values,
            ["BOOK_STATUS_AVAILABLE", "BOOK_STATUS_ON_LOAN"]
        );
        assert_eq!(book.fields[1].kind, "resource");
    }

    #[test]
    fn the_default_package_is_versioned() {
        let spec = parse("[service]\nname = \"LibraryService\"\n[[resources]]\nname = \"Book\"\n")
            .ok()
            .expect("valid");
        assert_eq!(spec.package, "library.v1");
        assert_eq!(spec.service, "LibraryService");
    }

    #[test]
    fn unknown_keys_are_located() {
        let err = error("[service]\nname = \"x\"\ncolour = 1\n");
        assert!(err.starts_with("3:1: unknown field `colour`"), "{err}");
    }

    #[test]
    fn bad_types_are_located_and_list_the_valid_ones() {
        let text = LIBRARY.replace("type = \"double\"", "type = \"float\"");
        let err = error(&text);
        assert!(
            err.starts_with("34:8: unknown type `float` for field `rating`"),
            "{err}"
        );
        assert!(err.contains("(Author, Book)"), "{err}");
    }

    #[test]
    fn duplicate_names_are_located() {
        let text = LIBRARY.replace("name = \"rating\"", "name = \"title\"");
        assert!(error(&text).starts_with("33:8: field `title` is declared twice in `Book`"));
        let text = LIBRARY.replace("name = \"Author\"", "name = \"Book\"");
        let err = error(&text);
        assert!(
            err.starts_with("15:8: resource `Book` is declared twice"),
            "{err}"
        );
    }

    #[test]
    fn other_mistakes_are_explained() {
        let cases = [
            (
                LIBRARY.replace("acme.library.v1", "acme.library"),
                "must end with a version",
            ),
            (
                LIBRARY.replace("\"list\"]", "\"search\"]"),
                "unknown operation `search`",
            ),
            (
                LIBRARY.replace("name = \"title\"", "name = \"Title\""),
                "lower_snake_case",
            ),
            (
                LIBRARY.replace("name = \"title\"", "name = \"id\""),
                "added to every resource",
            ),
            (
                LIBRARY.replace("values = [\"available\", \"on_loan\"]", ""),
                "needs `values`",
            ),
            (
                LIBRARY.replace("optional = true", "optional = true\nrequired = true"),
                "both required and optional",
            ),
            (
                LIBRARY.replace("name = \"Book\"", "name = \"book\""),
                "PascalCase",
            ),
        ];
        for (text, expected) in cases {
            let err = error(&text);
            assert!(err.contains(expected), "expected {expected:?}: {err}");
        }
        assert!(error("[service]\nname = \"x\"\n").contains("at least one resource"));
    }
}
