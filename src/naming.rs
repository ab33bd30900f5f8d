//! Naming decisions: which project names are accepted, and the Rust and proto names derived
//! from them. Every name the templates print is decided here, once.

use anyhow::bail;
use heck::{ToSnakeCase, ToUpperCamelCase};

/// Words Rust reserves (strict, reserved and edition-2018+ keywords).
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers (`r#self` is not valid Rust).
const NON_RAW_KEYWORDS: &[&str] = &["crate", "self", "super", "Self"];

/// Package names cargo refuses because they collide with built-in crates or artifacts.
const RESERVED_CRATE_NAMES: &[&str] = &[
    "alloc",
    "core",
    "proc_macro",
    "std",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// Longest project name accepted; it becomes a crate, binary, image and Kubernetes name.
const MAX_NAME_LEN: usize = 63;

/// Suffixes dropped from a project name to find its resource (`user-service` -> `user`).
const SERVICE_SUFFIXES: &[&str] = &["_service", "_svc", "_server"];

/// Whether `word` is a Rust keyword.
pub fn is_rust_keyword(word: &str) -> bool {
    RUST_KEYWORDS.contains(&word)
}

/// `word` as a Rust identifier: keywords become raw identifiers, or get a trailing underscore
/// where a raw identifier is not allowed. Matches prost's escaping.
pub fn rust_ident(word: &str) -> String {
    if NON_RAW_KEYWORDS.contains(&word) {
        format!("{word}_")
    } else if is_rust_keyword(word) {
        format!("r#{word}")
    } else {
        word.to_owned()
    }
}

/// Names of files the generated project itself keeps beside the per-service modules: in
/// `tests/` (the base's and the features' tests, and `common/`) and `src/services/`.
const TAKEN_MODULE_NAMES: &[&str] = &[
    "auth",
    "common",
    "health_reflection",
    "metrics",
    "middleware",
    "tls",
    "tracing",
];

/// A service's module and file name from its snake-case name: a Rust keyword, or a name the
/// project's own modules and tests already use, gets a trailing underscore (`type_`, `mod_`,
/// `auth_`). A raw identifier cannot name a module file (`mod r#type;` looks for `type.rs`),
/// and `mod.rs` is the services' own module.
pub fn module_name(snake: &str) -> String {
    if is_rust_keyword(snake)
        || NON_RAW_KEYWORDS.contains(&snake)
        || TAKEN_MODULE_NAMES.contains(&snake)
    {
        format!("{snake}_")
    } else {
        snake.to_owned()
    }
}

/// tonic-build's snake case for module names (`HTTPService` -> `h_t_t_p_service`): an
/// underscore before every uppercase letter that follows another character.
pub fn tonic_snake_case(name: &str) -> String {
    let mut snake = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        snake.push(c.to_ascii_lowercase());
        if chars.peek().is_some_and(|next| next.is_uppercase()) {
            snake.push('_');
        }
    }
    snake
}

/// prost's name for a message or service type: UpperCamelCase, `Self` escaped.
pub fn rust_type_name(proto_name: &str) -> String {
    let camel = proto_name.to_upper_camel_case();
    if camel == "Self" {
        "Self_".to_owned()
    } else {
        camel
    }
}

/// Checks a project name given on the command line and explains any refusal.
pub fn validate_project_name(name: &str) -> anyhow::Result<()> {
    let hint = "use lowercase letters, digits and single `-` or `_` between words, starting with a letter (e.g. `user-service`)";
    if name.is_empty() {
        bail!("the project name is empty; {hint}");
    }
    if name.len() < 2 {
        bail!("the project name `{name}` is too short; use at least 2 characters so the service and resource names it gives are meaningful");
    }
    if name.len() > MAX_NAME_LEN {
        bail!("the project name `{name}` is {} characters long; the limit is {MAX_NAME_LEN} (it is also used as a DNS label)", name.len());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '/' | '\\' | '.'))
    {
        bail!("the project name `{name}` contains {bad:?}; it must be a single name, not a path; {hint}");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        bail!("the project name `{name}` must start with a lowercase letter; {hint}");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_')))
    {
        bail!("the project name `{name}` contains {bad:?}; {hint}");
    }
    if name.ends_with(['-', '_'])
        || name.contains("--")
        || name.contains("__")
        || name.contains("-_")
        || name.contains("_-")
    {
        bail!("the project name `{name}` has an empty word; {hint}");
    }
    let crate_name = crate_name(name);
    if is_rust_keyword(&crate_name) {
        bail!("the project name `{name}` is a Rust keyword, so it cannot name a crate; try `{name}-service`");
    }
    if RESERVED_CRATE_NAMES.contains(&crate_name.as_str()) {
        bail!("the project name `{name}` is reserved by cargo or the Rust standard library; try `{name}-service`");
    }
    Ok(())
}

/// The crate (library) name of a project: `user-service` -> `user_service`.
pub fn crate_name(project: &str) -> String {
    project.replace('-', "_")
}

/// Names of the default resource a project offers when no proto or spec is given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResourceNames {
    /// Message name: `User`.
    pub name: String,
    /// Plural message-ish name for RPCs and fields: `Users`.
    pub plural: String,
    /// Field and module name: `user`.
    pub snake: String,
    /// Plural field name: `users`.
    pub plural_snake: String,
    /// `snake` as a Rust identifier (keywords escaped, as prost does for fields).
    pub snake_ident: String,
    /// `plural_snake` as a Rust identifier.
    pub plural_snake_ident: String,
}

/// Names of the default service of a project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DefaultServiceNames {
    /// Proto package: `user.v1`.
    pub package: String,
    /// Proto service: `UserService`.
    pub service: String,
    /// Path of the proto file inside `proto/`: `user/v1/user.proto`.
    pub proto_path: String,
    /// The resource the service manages.
    pub resource: ResourceNames,
}

/// Derives the default service of a project from its (valid) name:
/// `user-service` -> `user.v1` / `UserService` / `User`; `billing` -> `billing.v1` /
/// `BillingService` / `Billing`.
pub fn default_service(project: &str) -> DefaultServiceNames {
    let snake = project.to_snake_case();
    let base = SERVICE_SUFFIXES
        .iter()
        .find_map(|suffix| snake.strip_suffix(suffix).filter(|rest| !rest.is_empty()))
        .unwrap_or(&snake)
        .to_owned();
    let name = base.to_upper_camel_case();
    let plural = pluralize(&name);
    let resource = ResourceNames {
        plural_snake: plural.to_snake_case(),
        snake_ident: rust_ident(&base),
        plural_snake_ident: rust_ident(&plural.to_snake_case()),
        snake: base.clone(),
        name: name.clone(),
        plural,
    };
    DefaultServiceNames {
        package: format!("{base}.v1"),
        service: format!("{name}Service"),
        proto_path: format!("{base}/v1/{base}.proto"),
        resource,
    }
}

/// English plural of a PascalCase word, good enough for resource names.
pub fn pluralize(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let consonant_y =
        lower.ends_with('y') && !lower[..lower.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &word[..word.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| lower.ends_with(end))
    {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn module_names_are_file_names_without_keywords_or_taken_names() {
        assert_eq!(module_name("user_service"), "user_service");
        for (snake, module) in [
            ("type", "type_"),
            ("fn", "fn_"),
            ("mod", "mod_"),
            ("self", "self_"),
            ("crate", "crate_"),
            ("gen", "gen_"),
            ("middleware", "middleware_"),
            ("common", "common_"),
        ] {
            assert_eq!(module_name(snake), module);
        }
    }

    use super::*;

    #[test]
    fn default_service_of_user_service() {
        let names = default_service("user-service");
        assert_eq!(names.package, "user.v1");
        assert_eq!(names.service, "UserService");
        assert_eq!(names.proto_path, "user/v1/user.proto");
        assert_eq!(names.resource.name, "User");
        assert_eq!(names.resource.plural, "Users");
        assert_eq!(names.resource.plural_snake, "users");
    }

    #[test]
    fn default_service_of_single_word() {
        let names = default_service("billing");
        assert_eq!(names.package, "billing.v1");
        assert_eq!(names.service, "BillingService");
        assert_eq!(names.resource.name, "Billing");
    }

    #[test]
    fn default_service_of_multi_word_name() {
        let names = default_service("order_history-svc");
        assert_eq!(names.package, "order_history.v1");
        assert_eq!(names.service, "OrderHistoryService");
        assert_eq!(names.proto_path, "order_history/v1/order_history.proto");
        assert_eq!(names.resource.plural_snake, "order_histories");
    }

    #[test]
    fn a_bare_suffix_is_kept_as_the_resource() {
        assert_eq!(default_service("service").resource.name, "Service");
    }

    #[test]
    fn resource_identifiers_escape_keywords() {
        let names = default_service("as");
        assert_eq!(names.resource.plural_snake, "ases");
        let names = default_service("a");
        assert_eq!(names.resource.plural_snake, "as");
        assert_eq!(names.resource.plural_snake_ident, "r#as");
        assert_eq!(
            default_service("type-service").resource.snake_ident,
            "r#type"
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(pluralize("Category"), "Categories");
        assert_eq!(pluralize("Day"), "Days");
        assert_eq!(pluralize("Address"), "Addresses");
        assert_eq!(pluralize("Match"), "Matches");
        assert_eq!(pluralize("Order"), "Orders");
    }

    #[test]
    fn accepted_names() {
        for name in [
            "user-service",
            "billing",
            "a1",
            "order_history-svc",
            "type-service",
        ] {
            validate_project_name(name).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }

    #[test]
    fn refused_names_say_why() {
        let cases = [
            ("", "empty"),
            ("a", "too short"),
            ("1service", "start with a lowercase letter"),
            ("self", "Rust keyword"),
            ("type", "Rust keyword"),
            ("test", "reserved"),
            ("my/service", "not a path"),
            ("my service", "not a path"),
            ("UserService", "start with a lowercase letter"),
            ("user.service", "not a path"),
            ("user--service", "empty word"),
            ("user-", "empty word"),
            ("usér", "contains"),
        ];
        for (name, reason) in cases {
            let err = validate_project_name(name).expect_err(name).to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
        let long = "a".repeat(64);
        assert!(validate_project_name(&long)
            .unwrap_err()
            .to_string()
            .contains("limit"));
    }

    #[test]
    fn tonic_module_names_split_every_capital() {
        assert_eq!(tonic_snake_case("UserService"), "user_service");
        assert_eq!(tonic_snake_case("HTTPGateway"), "h_t_t_p_gateway");
        assert_eq!(tonic_snake_case("Greeter"), "greeter");
    }

    #[test]
    fn keywords_become_valid_identifiers() {
        assert_eq!(rust_ident("type"), "r#type");
        assert_eq!(rust_ident("self"), "self_");
        assert_eq!(rust_ident("user"), "user");
    }
}
