//! Model stage: what the generated project is, as plain data for the templates. Built from
//! protox descriptors; every Rust name is decided here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::bail;
use heck::{ToSnakeCase, ToUpperCamelCase};
use prost_types::{
    source_code_info::Location, DescriptorProto, FileDescriptorProto, MethodDescriptorProto,
};
use serde::Serialize;

pub mod base;
pub mod features;
pub mod settings;

use crate::{
    input::{
        spec::{ResourceSpec, ServiceSpec},
        CompiledProtos,
    },
    naming::{self, ResourceNames},
};
use features::{ChosenFeature, Dependency, Features, Kind, Part};
use settings::{build_sections, ConfigSection, ProjectDefaults};

/// The whole project, as the templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct Project {
    /// Project (package and binary) name: `user-service`.
    pub name: String,
    /// Library crate name: `user_service`.
    pub crate_name: String,
    /// Version of microframework that generated the project.
    pub tool_version: String,
    /// Root proto files, relative to `proto/`.
    pub proto_roots: Vec<String>,
    /// Services of the root files, in file then declaration order.
    pub services: Vec<Service>,
    /// Whether any service is CRUD over a resource (the project then has `src/store/`).
    pub has_resources: bool,
    /// The streaming kinds used by any method, each once, in declaration order.
    pub method_kinds: Vec<MethodKind>,
    /// Whether any service gets stub handlers (its meaning is unknown to the tool).
    pub has_stubs: bool,
    /// Whether any service is implemented from a spec (over `store::memory`).
    pub has_spec_resources: bool,
    /// Whether an RPC takes or returns a well-known wrapper prost makes a primitive of
    /// (`google.protobuf.Int64Value` is `i64`).
    pub wrapper_rpc_types: bool,
    /// Whether tonic-health serves `grpc.health.v1.Health` (false when the proto defines it).
    pub builtin_health: bool,
    /// Roles the write methods of resource services need by default.
    pub role_rules: Vec<RoleRule>,
    /// The kind chosen of each feature, by feature name (`project.features.auth == "jwt"`).
    pub features: BTreeMap<&'static str, &'static str>,
    /// The features that are part of the project, in the order their layers wrap the server.
    pub chosen: Vec<ChosenFeature>,
    /// Every route the server answers (the application's, health's and reflection's), sorted
    /// by path: the runtime's method table.
    pub method_types: Vec<MethodEntry>,
    /// Library modules declared in `src/lib.rs`, sorted.
    pub modules: Vec<&'static str>,
    /// `[dependencies]` of the generated `Cargo.toml`, sorted by crate.
    pub dependencies: Vec<DependencyLine>,
    /// `[dev-dependencies]`, likewise.
    pub dev_dependencies: Vec<DependencyLine>,
    /// Cargo features of the generated crate.
    pub cargo_features: Vec<CargoFeatureLine>,
    /// The names of the cargo features on by default.
    pub default_cargo_features: Vec<&'static str>,
    /// The configuration sections, each after its parent (the root, `""`, first).
    pub config_sections: Vec<ConfigSection>,
    /// Top-level sections of features that can be switched on but are not: a config file
    /// may still have them (a `gen` switched the feature off), and they are ignored.
    pub disabled_sections: Vec<&'static str>,
    /// Keys (`discovery.redis_url`) that another kind of a chosen feature puts in a section
    /// this project has: a config file may still have them (a `gen` switched the kind), and
    /// they are ignored.
    pub disabled_keys: Vec<String>,
    /// Default port of each section that listens (`grpc`, `metrics`), from its settings.
    pub ports: BTreeMap<String, String>,
    /// What the deployment files need, when the project has them (`--deploy`).
    pub deploy: Option<features::deploy::Deployment>,
    /// The database the resources are kept in, unless they are kept in memory.
    pub database: Option<features::database::Database>,
    /// The first application route, by path, whose one request is read before its handler
    /// runs (unary or server streaming): where the generated tests check the message size
    /// limit.
    pub one_request_route: Option<String>,
}

/// One dependency line of the generated `Cargo.toml`: `name = spec`.
#[derive(Debug, Clone, Serialize)]
pub struct DependencyLine {
    /// Crate name.
    pub name: &'static str,
    /// The TOML value: `"1"` or `{ version = "1", features = ["derive"] }`.
    pub spec: String,
}

/// A cargo feature of the generated crate, as `Cargo.toml` declares it.
#[derive(Debug, Clone, Serialize)]
pub struct CargoFeatureLine {
    /// Its name.
    pub name: &'static str,
    /// What it does, as a comment.
    pub doc: &'static str,
    /// What it enables, each quoted.
    pub enables: Vec<String>,
}

/// A row of the method table `src/proto.rs` hands the runtime.
#[derive(Debug, Clone, Serialize)]
pub struct MethodEntry {
    /// `/package.Service/Method`.
    pub route: String,
    /// Its kind as go-grpc-prometheus names it, which is also the name of the runtime's
    /// constructor (`Method::server_stream`).
    pub kind: &'static str,
    /// Whether it only reads, so the client may repeat it.
    pub idempotent: bool,
}

/// Routes of the infrastructure services, with their kinds.
const INFRASTRUCTURE_METHODS: &[(&str, &str)] = &[
    ("/grpc.health.v1.Health/Check", "unary"),
    ("/grpc.health.v1.Health/Watch", "server_stream"),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "bidi_stream",
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "bidi_stream",
    ),
];

/// One gRPC service the project serves.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    /// Proto name: `UserService`.
    pub name: String,
    /// Fully-qualified proto name: `user.v1.UserService`.
    pub full_name: String,
    /// Proto package: `user.v1`.
    pub package: String,
    /// Root file declaring the service, relative to `proto/`.
    pub file: String,
    /// Path of the package's generated module from the crate root: `proto::user::v1`.
    pub proto_module: String,
    /// Handler module under `src/services/`: `user_service`.
    pub module: String,
    /// Whether this is the project's own `grpc.health.v1.Health`, served in place of
    /// tonic-health's from the same health statuses.
    pub replaces_health: bool,
    /// Generated server module: `user_service_server`.
    pub server_module: String,
    /// Generated service trait: `UserService`.
    pub trait_name: String,
    /// Generated server type: `UserServiceServer`.
    pub server_type: String,
    /// Handler struct in the user-owned module: `UserServiceHandler`.
    pub handler: String,
    /// Typed API struct of the project's client: `UserServiceApi`.
    pub api: String,
    /// Module of the API under `src/client/`: `user_service_api`.
    pub api_module: String,
    /// Accessor on the project's client returning the API: `user_service`.
    pub accessor: String,
    /// Leading comment of the service, one entry per line.
    pub doc: Vec<String>,
    /// The service's methods, in declaration order.
    pub methods: Vec<Method>,
    /// Set when the tool knows the service is CRUD over this resource, so it can implement it.
    pub resource: Option<ResourceNames>,
    /// Whether any method streams responses (the handler then needs a stream type).
    pub streams_responses: bool,
    /// Whether any method names a message of the service's own package (through `pb::`).
    pub uses_package_types: bool,
    /// Whether the service has methods (one without gets no client API and no tests).
    pub has_methods: bool,
    /// Resources from a service spec this service manages (then implemented in memory).
    pub spec_resources: Vec<ResourceSpec>,
    /// The operations offered by any of `spec_resources`.
    pub spec_operations: Vec<String>,
}

/// A method and the role (or scope) its callers need unless the configuration says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleRule {
    /// gRPC route: `/user.v1.UserService/DeleteUser`.
    pub route: String,
    /// The role: `user:write`.
    pub role: String,
}

/// The write methods (`Create*`, `Update*`, `Delete*`) of the services the tool implements, each
/// needing the `<resource>:write` role.
fn role_rules(services: &[Service]) -> Vec<RoleRule> {
    let mut rules: Vec<RoleRule> = services
        .iter()
        .filter(|s| s.resource.is_some() || !s.spec_resources.is_empty())
        .flat_map(|s| &s.methods)
        .filter(|m| m.kind == MethodKind::Unary)
        .filter_map(|m| {
            let resource = ["Create", "Update", "Delete"]
                .iter()
                .find_map(|verb| m.name.strip_prefix(verb))
                .filter(|rest| !rest.is_empty())?;
            Some(RoleRule {
                route: m.route.clone(),
                role: format!("{}:write", resource.to_snake_case()),
            })
        })
        .collect();
    rules.sort_by(|a, b| a.route.cmp(&b.route));
    rules
}

/// The routes of the methods of the services the tool implements that only read (`Get*`,
/// `List*`, `Stream*`), and health's `Check` when tonic-health serves it: safe to retry.
fn read_methods(services: &[Service], builtin_health: bool) -> Vec<String> {
    let mut routes: Vec<String> = services
        .iter()
        .filter(|s| s.resource.is_some() || !s.spec_resources.is_empty())
        .flat_map(|s| &s.methods)
        .filter(|m| matches!(m.kind, MethodKind::Unary | MethodKind::ServerStreaming))
        .filter(|m| {
            ["Get", "List", "Stream"]
                .iter()
                .any(|verb| m.name.starts_with(verb))
        })
        .map(|m| m.route.clone())
        .collect();
    if builtin_health {
        routes.push("/grpc.health.v1.Health/Check".to_owned());
    }
    routes.sort();
    routes
}

/// Health's methods as grpc/health/v1/health.proto declares them: (name, client streams,
/// server streams, request, response). `List` came later: a proto may declare it or not.
const HEALTH_METHODS: &[(&str, bool, bool, &str, &str)] = &[
    (
        "Check",
        false,
        false,
        ".grpc.health.v1.HealthCheckRequest",
        ".grpc.health.v1.HealthCheckResponse",
    ),
    (
        "List",
        false,
        false,
        ".grpc.health.v1.HealthListRequest",
        ".grpc.health.v1.HealthListResponse",
    ),
    (
        "Watch",
        false,
        true,
        ".grpc.health.v1.HealthCheckRequest",
        ".grpc.health.v1.HealthCheckResponse",
    ),
];

/// Reflection's one method as grpc/reflection/{v1,v1alpha}/reflection.proto declare it.
fn reflection_method(package: &str) -> (&'static str, bool, bool, String, String) {
    (
        "ServerReflectionInfo",
        true,
        true,
        format!(".{package}.ServerReflectionRequest"),
        format!(".{package}.ServerReflectionResponse"),
    )
}

/// What a root service that takes the place of one the server provides becomes.
#[derive(Debug, PartialEq, Eq)]
enum Replaceable {
    /// An application service (health included: its handler answers).
    Serve,
    /// grpc.reflection as its proto declares it: the built-in reflection serves it.
    BuiltIn,
}

/// Checks a root service that takes the place of one the server provides itself:
/// grpc.health.v1.Health as the standard proto declares it (with or without `List`) is
/// served by the project's handler, which answers from the server's health statuses;
/// grpc.reflection as its proto declares it is left to the built-in reflection, which
/// serves it with the project's other services. Anything else by those names is refused.
fn check_replaceable(
    file: &str,
    full_name: &str,
    service: &prost_types::ServiceDescriptorProto,
) -> anyhow::Result<Replaceable> {
    let declared = || -> Vec<(&str, bool, bool, String, String)> {
        service
            .method
            .iter()
            .map(|m| {
                (
                    m.name(),
                    m.client_streaming(),
                    m.server_streaming(),
                    m.input_type().to_owned(),
                    m.output_type().to_owned(),
                )
            })
            .collect()
    };
    if let Some(package) = full_name.strip_suffix(".ServerReflection") {
        if ["grpc.reflection.v1", "grpc.reflection.v1alpha"].contains(&package)
            && declared() == [reflection_method(package)]
        {
            return Ok(Replaceable::BuiltIn);
        }
    }
    if full_name.starts_with("grpc.reflection.") {
        bail!(
            "{file}: defines `{full_name}`, which every generated server already serves (tonic-reflection, switched with reflection.enabled), and not as grpc/reflection/v1/reflection.proto declares it; pass the standard file, import it instead of passing it as a root, or rename the service"
        );
    }
    if full_name == "grpc.health.v1.Health" {
        let declared = declared();
        fn standard(
            &(name, client, server, input, output): &(&'static str, bool, bool, &str, &str),
        ) -> (&'static str, bool, bool, String, String) {
            (name, client, server, input.to_owned(), output.to_owned())
        }
        let with_list: Vec<_> = HEALTH_METHODS.iter().map(standard).collect();
        let without_list: Vec<_> = HEALTH_METHODS
            .iter()
            .filter(|method| method.0 != "List")
            .map(standard)
            .collect();
        let mut sorted = declared.clone();
        sorted.sort();
        if sorted != with_list && sorted != without_list {
            bail!(
                "{file}: defines `grpc.health.v1.Health` with methods other than the standard `Check` and `Watch` (and `List`); the generated server serves health itself at those routes, so declare the service as grpc/health/v1/health.proto does (its handler then answers in place of tonic-health's) or rename it"
            );
        }
    }
    Ok(Replaceable::Serve)
}

/// The 1-based line and column where the `index`th service of `file` is declared.
/// Whether the application itself defines the service `full_name`.
fn defines(services: &[Service], full_name: &str) -> bool {
    services.iter().any(|s| s.full_name == full_name)
}

/// How a method streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    Bidirectional,
}

impl MethodKind {
    /// The name go-grpc-prometheus gives the kind (its `grpc_type` label).
    pub fn grpc_type(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStreaming => "server_stream",
            Self::ClientStreaming => "client_stream",
            Self::Bidirectional => "bidi_stream",
        }
    }
}

/// One RPC of a service.
#[derive(Debug, Clone, Serialize)]
pub struct Method {
    /// Proto name: `GetUser`.
    pub name: String,
    /// Rust method name, as tonic generates it: `get_user`.
    pub rust_name: String,
    /// gRPC route: `/user.v1.UserService/GetUser`.
    pub route: String,
    /// Streaming kind.
    pub kind: MethodKind,
    /// Rust type of the request message, relative to the service's `pb` alias when it lives in
    /// the service's package.
    pub input: String,
    /// Rust type of the response message, likewise.
    pub output: String,
    /// `input` as a path from the crate root (`crate::proto::user::v1::GetUserRequest`), for
    /// code that cannot rely on the `pb` alias.
    pub input_path: String,
    /// `output` as a path from the crate root.
    pub output_path: String,
    /// Associated stream type tonic asks for on response-streaming methods: `StreamUsersStream`
    /// (tonic keeps the proto spelling, so `watch_all` gives `watch_allStream`).
    pub stream_type: String,
    /// Whether `stream_type` is UpperCamelCase (otherwise it needs a lint exception).
    pub stream_type_is_camel: bool,
    /// Leading comment of the method, one entry per line.
    pub doc: Vec<String>,
}

/// What the tool knows about the services it made itself, so it can implement them.
#[derive(Debug, Clone, Default)]
pub struct KnownServices {
    /// Default services (full name -> resource): CRUD over name and email.
    pub resources: HashMap<String, ResourceNames>,
    /// The service of a spec, with its resources.
    pub spec: Option<ServiceSpec>,
}

impl KnownServices {
    /// The default service of a project named `name`: CRUD over the resource the name gives.
    pub fn default_of(name: &str) -> Self {
        let default = naming::default_service(name);
        let full_name = format!("{}.{}", default.package, default.service);
        Self {
            resources: HashMap::from([(full_name, default.resource)]),
            spec: None,
        }
    }
}

/// Builds the project model from compiled protos; services in `known` get a working
/// implementation, the others stubs.
pub fn build_project(
    name: &str,
    protos: &CompiledProtos,
    known: &KnownServices,
    features: &Features,
) -> anyhow::Result<Project> {
    check_size(protos)?;
    let types = RustTypes::index(&protos.descriptors.file);
    let mut services = Vec::new();
    for root in &protos.roots {
        let Some(file) = protos.descriptors.file.iter().find(|f| f.name() == root) else {
            bail!("{root}: compiled, but missing from the descriptor set");
        };
        if file.service.is_empty() {
            bail!(
                "{}: declares no `service`, so there is nothing to serve; a file with only messages belongs under an include directory (-I) and is compiled because a root file imports it",
                protos.display_root(root)
            );
        }
        let locations = Locations::of(file);
        for (index, service) in file.service.iter().enumerate() {
            let full_name = qualified(file.package(), service.name());
            let location = match locations.position(&[6, index as i32]) {
                Some((line, column)) => format!("{}:{line}:{column}", protos.display_root(root)),
                None => protos.display_root(root).to_owned(),
            };
            if check_replaceable(&location, &full_name, service)? == Replaceable::BuiltIn {
                continue;
            }
            let doc = locations.comment_lines(&[6, index as i32]);
            let methods = service
                .method
                .iter()
                .enumerate()
                .map(|(method_index, method)| {
                    let doc = locations.comment_lines(&[6, index as i32, 2, method_index as i32]);
                    build_method(&full_name, file.package(), method, doc, &types)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut built = build_service(
                file,
                service.name(),
                full_name.clone(),
                doc,
                methods,
                known.resources.get(&full_name).cloned(),
            );
            if let Some(spec) = &known.spec {
                if format!("{}.{}", spec.package, spec.service) == full_name {
                    built.spec_operations = spec.operations.clone();
                    built.spec_resources = spec.resources.clone();
                }
            }
            services.push(built);
        }
    }
    if services.is_empty() {
        bail!(
            "{}: defines only grpc.reflection, which every generated server serves itself; add a root file with a service of your own",
            protos.display_root(&protos.roots[0])
        );
    }
    disambiguate_modules(&mut services);
    let mut method_kinds = Vec::new();
    for method in services.iter().flat_map(|s| &s.methods) {
        if !method_kinds.contains(&method.kind) {
            method_kinds.push(method.kind);
        }
    }
    let mut method_types: Vec<(String, &'static str)> = services
        .iter()
        .flat_map(|s| &s.methods)
        .map(|m| (m.route.clone(), m.kind.grpc_type()))
        .chain(
            INFRASTRUCTURE_METHODS
                .iter()
                .map(|(path, kind)| ((*path).to_owned(), *kind)),
        )
        .collect();
    method_types.sort();
    method_types.dedup_by(|a, b| a.0 == b.0);
    let one_request_route = services
        .iter()
        .flat_map(|s| &s.methods)
        .filter(|m| matches!(m.kind, MethodKind::Unary | MethodKind::ServerStreaming))
        .map(|m| m.route.clone())
        .min();
    let has_resources = services
        .iter()
        .any(|s| s.resource.is_some() || !s.spec_resources.is_empty());
    let parts: Vec<&Part> = std::iter::once(&base::BASE)
        .chain(has_resources.then_some(&base::STORE))
        .chain(features.parts())
        .collect();
    let mut modules: Vec<&'static str> = parts.iter().flat_map(|p| p.modules).copied().collect();
    modules.sort_unstable();
    let sections: Vec<_> = parts.iter().flat_map(|p| p.sections).copied().collect();
    let service_names: Vec<String> = services.iter().map(|s| s.full_name.clone()).collect();
    let role_rules = role_rules(&services);
    let builtin_health = !defines(&services, "grpc.health.v1.Health");
    let read_methods = read_methods(&services, builtin_health);
    let method_types: Vec<MethodEntry> = method_types
        .into_iter()
        .map(|(route, kind)| MethodEntry {
            idempotent: read_methods.binary_search(&route).is_ok(),
            route,
            kind,
        })
        .collect();
    let defaults = ProjectDefaults {
        services: &service_names,
        role_rules: &role_rules,
        read_methods: &read_methods,
    };
    let config_sections = build_sections(&sections, defaults);
    let ports = listening_ports(&config_sections);
    let chosen_sections: BTreeSet<&str> = sections.iter().map(|s| s.key).collect();
    // Kinds of one feature may declare the same section (both databases' `database`).
    let mut disabled_sections: Vec<&'static str> = Vec::new();
    for key in features::Features::all_parts()
        .iter()
        .flat_map(|p| p.sections)
        .map(|s| s.key)
        .filter(|key| !key.contains('.') && !chosen_sections.contains(key))
    {
        if !disabled_sections.contains(&key) {
            disabled_sections.push(key);
        }
    }
    let chosen_keys: BTreeSet<(&str, &str)> = sections
        .iter()
        .flat_map(|section| section.settings.iter().map(|s| (section.key, s.key)))
        .collect();
    // A section of a runtime type is one type for every kind: it reads every kind's keys.
    let runtime_typed: BTreeSet<&str> = sections
        .iter()
        .filter(|section| section.rust_type.contains("::"))
        .map(|section| section.key)
        .collect();
    let disabled_keys: BTreeSet<String> = features::Features::all_parts()
        .iter()
        .flat_map(|p| p.sections)
        .filter(|section| chosen_sections.contains(section.key))
        .filter(|section| !runtime_typed.contains(section.key))
        .flat_map(|section| section.settings.iter().map(|s| (section.key, s.key)))
        .filter(|key| !chosen_keys.contains(key))
        .map(|(section, key)| format!("{section}.{key}"))
        .collect();
    let deploy = features
        .deploy
        .is_chosen()
        .then(|| features::deploy::Deployment::new(name, features, &config_sections, &ports));
    Ok(Project {
        modules,
        dependencies: dependency_lines(parts.iter().flat_map(|p| p.dependencies)),
        dev_dependencies: dependency_lines(parts.iter().flat_map(|p| p.dev_dependencies)),
        cargo_features: parts
            .iter()
            .flat_map(|p| p.cargo_features)
            .map(|f| CargoFeatureLine {
                name: f.name,
                doc: f.doc,
                enables: f.enables.iter().map(|e| format!("{e:?}")).collect(),
            })
            .collect(),
        default_cargo_features: parts
            .iter()
            .flat_map(|p| p.cargo_features)
            .filter(|f| f.default)
            .map(|f| f.name)
            .collect(),
        config_sections,
        disabled_sections,
        disabled_keys: disabled_keys.into_iter().collect(),
        ports,
        deploy,
        database: features::database::Database::of(features.database),
        features: features.kinds(),
        chosen: features.chosen(),
        method_types,
        one_request_route,
        method_kinds,
        has_stubs: services
            .iter()
            .any(|s| s.resource.is_none() && s.spec_resources.is_empty()),
        has_resources,
        has_spec_resources: services.iter().any(|s| !s.spec_resources.is_empty()),
        builtin_health,
        wrapper_rpc_types: services.iter().flat_map(|s| &s.methods).any(|m| {
            [&m.input, &m.output]
                .iter()
                .any(|rust| PRIMITIVE_WRAPPERS.contains(&rust.as_str()))
        }),
        role_rules,
        name: name.to_owned(),
        crate_name: naming::crate_name(name),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        proto_roots: protos.roots.clone(),
        services,
    })
}

/// Dependency lines sorted by crate, one per crate: the same crate from two parts gets the
/// union of their features.
/// The default port of each section that listens (`grpc`, `metrics`), by section key.
pub fn listening_ports(sections: &[ConfigSection]) -> BTreeMap<String, String> {
    sections
        .iter()
        .flat_map(|section| {
            section
                .settings
                .iter()
                .filter(|setting| setting.key == "port")
                .map(|setting| (section.key.clone(), setting.toml_default.clone()))
        })
        .collect()
}

fn dependency_lines<'a>(dependencies: impl Iterator<Item = &'a Dependency>) -> Vec<DependencyLine> {
    let mut merged: BTreeMap<&'static str, (Dependency, Vec<&'static str>)> = BTreeMap::new();
    for dependency in dependencies {
        let entry = merged
            .entry(dependency.name)
            .or_insert_with(|| (*dependency, Vec::new()));
        entry.0.optional &= dependency.optional;
        for feature in dependency.features {
            if !entry.1.contains(feature) {
                entry.1.push(feature);
            }
        }
    }
    merged
        .into_values()
        .map(|(dependency, mut features)| {
            features.sort_unstable();
            let mut fields = match dependency.path {
                Some(path) => vec![format!("path = {path:?}")],
                None => vec![format!("version = {:?}", dependency.version)],
            };
            if !dependency.default_features {
                fields.push("default-features = false".to_owned());
            }
            if !features.is_empty() {
                let quoted: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
                fields.push(format!("features = [{}]", quoted.join(", ")));
            }
            if dependency.optional {
                fields.push("optional = true".to_owned());
            }
            let spec = if fields.len() == 1 && dependency.path.is_none() {
                format!("{:?}", dependency.version)
            } else {
                format!("{{ {} }}", fields.join(", "))
            };
            DependencyLine {
                name: dependency.name,
                spec,
            }
        })
        .collect()
}

fn build_service(
    file: &FileDescriptorProto,
    name: &str,
    full_name: String,
    doc: Vec<String>,
    methods: Vec<Method>,
    resource: Option<ResourceNames>,
) -> Service {
    let pascal = naming::rust_type_name(name);
    let replaces_health = full_name == "grpc.health.v1.Health";
    // Names of our own built from it need no escape: `Self` gives `SelfHandler`.
    let camel = name.to_upper_camel_case();
    let snake = name.to_snake_case();
    let tonic_snake = naming::tonic_snake_case(&pascal);
    let streams_responses = methods.iter().any(|m| {
        matches!(
            m.kind,
            MethodKind::ServerStreaming | MethodKind::Bidirectional
        )
    });
    let uses_package_types = methods
        .iter()
        .any(|m| m.input.starts_with("pb::") || m.output.starts_with("pb::"));
    Service {
        has_methods: !methods.is_empty(),
        spec_resources: Vec::new(),
        spec_operations: Vec::new(),
        uses_package_types,
        name: name.to_owned(),
        full_name,
        package: file.package().to_owned(),
        file: file.name().to_owned(),
        proto_module: package_module(file.package()),
        module: naming::module_name(&snake),
        replaces_health,
        server_module: format!("{tonic_snake}_server"),
        trait_name: pascal.clone(),
        server_type: format!("{pascal}Server"),
        handler: format!("{camel}Handler"),
        api: format!("{camel}Api"),
        api_module: format!("{snake}_api"),
        accessor: naming::rust_ident(&snake),
        doc,
        methods,
        resource,
        streams_responses,
    }
}

fn build_method(
    service_full_name: &str,
    package: &str,
    method: &MethodDescriptorProto,
    doc: Vec<String>,
    types: &RustTypes,
) -> anyhow::Result<Method> {
    let kind = match (method.client_streaming(), method.server_streaming()) {
        (false, false) => MethodKind::Unary,
        (false, true) => MethodKind::ServerStreaming,
        (true, false) => MethodKind::ClientStreaming,
        (true, true) => MethodKind::Bidirectional,
    };
    let input = types.resolve(method.input_type(), package)?;
    let output = types.resolve(method.output_type(), package)?;
    let from_root = |ty: &str| match ty.strip_prefix("pb::") {
        Some(rest) => format!("crate::{}::{rest}", package_module(package)),
        None => ty.to_owned(),
    };
    let stream_type = format!("{}Stream", method.name());
    Ok(Method {
        input_path: from_root(&input),
        output_path: from_root(&output),
        stream_type_is_camel: stream_type == stream_type.to_upper_camel_case(),
        stream_type,
        input,
        name: method.name().to_owned(),
        rust_name: naming::rust_ident(&method.name().to_snake_case()),
        route: format!("/{service_full_name}/{}", method.name()),
        kind,
        output,
        doc,
    })
}

/// Two services with the same name in different packages get package-qualified modules.
fn disambiguate_modules(services: &mut [Service]) {
    let mut seen = BTreeSet::new();
    let repeated: BTreeSet<String> = services
        .iter()
        .filter(|service| !seen.insert(service.module.clone()))
        .map(|service| service.module.clone())
        .collect();
    for service in services.iter_mut().filter(|s| repeated.contains(&s.module)) {
        let prefix = service.package.replace('.', "_").to_snake_case();
        let unique = format!("{prefix}_{}", service.name.to_snake_case());
        service.module = naming::module_name(&unique);
        service.accessor = service.module.clone();
        let pascal = unique.to_upper_camel_case();
        service.handler = format!("{pascal}Handler");
        service.api = format!("{pascal}Api");
        service.api_module = format!("{unique}_api");
    }
}

/// Path from the crate root of the module prost generates for a package:
/// `user.v1` -> `proto::user::v1`.
pub fn package_module(package: &str) -> String {
    let mut path = String::from("proto");
    for segment in package.split('.').filter(|s| !s.is_empty()) {
        path.push_str("::");
        path.push_str(&naming::rust_ident(&segment.to_snake_case()));
    }
    path
}

fn qualified(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// The Rust types prost makes of the well-known wrappers.
const PRIMITIVE_WRAPPERS: &[&str] = &["bool", "f32", "f64", "i32", "i64", "u32", "u64"];

/// Maps fully-qualified message names to the Rust types prost generates for them.
struct RustTypes {
    /// `.user.v1.User` -> (package, Rust path relative to the package module).
    messages: HashMap<String, (String, String)>,
}

impl RustTypes {
    fn index(files: &[FileDescriptorProto]) -> Self {
        let mut messages = HashMap::new();
        for file in files {
            let prefix = if file.package().is_empty() {
                String::new()
            } else {
                format!(".{}", file.package())
            };
            for message in &file.message_type {
                index_message(&mut messages, file.package(), &prefix, "", message);
            }
        }
        Self { messages }
    }

    /// The Rust type for `proto_type`, seen from a service in `package`.
    fn resolve(&self, proto_type: &str, package: &str) -> anyhow::Result<String> {
        // prost maps these well-known types to Rust types rather than to `prost_types`.
        let primitive = match proto_type {
            ".google.protobuf.Empty" => Some("()"),
            ".google.protobuf.BoolValue" => Some("bool"),
            ".google.protobuf.BytesValue" => Some("Vec<u8>"),
            ".google.protobuf.DoubleValue" => Some("f64"),
            ".google.protobuf.FloatValue" => Some("f32"),
            ".google.protobuf.Int32Value" => Some("i32"),
            ".google.protobuf.Int64Value" => Some("i64"),
            ".google.protobuf.StringValue" => Some("String"),
            ".google.protobuf.UInt32Value" => Some("u32"),
            ".google.protobuf.UInt64Value" => Some("u64"),
            _ => None,
        };
        if let Some(primitive) = primitive {
            return Ok(primitive.to_owned());
        }
        match proto_type {
            wkt if wkt.starts_with(".google.protobuf.") => {
                return Ok(format!(
                    "::prost_types::{}",
                    &wkt[".google.protobuf.".len()..]
                ));
            }
            _ => {}
        }
        let Some((type_package, relative)) = self.messages.get(proto_type) else {
            bail!("message type `{proto_type}` is not defined in the compiled files");
        };
        if type_package == package {
            Ok(format!("pb::{relative}"))
        } else {
            Ok(format!(
                "crate::{}::{relative}",
                package_module(type_package)
            ))
        }
    }
}

fn index_message(
    messages: &mut HashMap<String, (String, String)>,
    package: &str,
    proto_prefix: &str,
    rust_prefix: &str,
    message: &DescriptorProto,
) {
    let full_name = format!("{proto_prefix}.{}", message.name());
    let rust_name = format!("{rust_prefix}{}", naming::rust_type_name(message.name()));
    let nested_prefix = format!(
        "{rust_prefix}{}::",
        naming::rust_ident(&message.name().to_snake_case())
    );
    for nested in &message.nested_type {
        index_message(messages, package, &full_name, &nested_prefix, nested);
    }
    messages.insert(full_name, (package.to_owned(), rust_name));
}

/// The most services one project serves.
pub const MAX_SERVICES: usize = 500;

/// The most methods one project serves, over all its services.
pub const MAX_METHODS: usize = 5_000;

/// Refuses protos whose services or methods pass [`MAX_SERVICES`] or [`MAX_METHODS`], naming
/// the root file where the limit is passed.
fn check_size(protos: &CompiledProtos) -> anyhow::Result<()> {
    let (mut services, mut methods) = (0, 0);
    for root in &protos.roots {
        let Some(file) = protos.descriptors.file.iter().find(|f| f.name() == root) else {
            continue;
        };
        services += file.service.len();
        methods += file.service.iter().map(|s| s.method.len()).sum::<usize>();
        if services > MAX_SERVICES || methods > MAX_METHODS {
            bail!(
                "{}: the protos declare more than {MAX_SERVICES} services or {MAX_METHODS} methods ({services} and {methods} so far), the most microframework generates for one project; split the API into projects",
                protos.display_root(root)
            );
        }
    }
    Ok(())
}

/// The source locations of one file by path, indexed once: looking each up by scanning them
/// all made projects quadratic in their methods.
struct Locations<'a>(HashMap<&'a [i32], &'a Location>);

impl<'a> Locations<'a> {
    fn of(file: &'a FileDescriptorProto) -> Self {
        let mut index = HashMap::new();
        for location in file.source_code_info.iter().flat_map(|info| &info.location) {
            // The first location of a path is the declaration's own.
            index.entry(location.path.as_slice()).or_insert(location);
        }
        Self(index)
    }

    /// The 1-based line and column where the element at `path` starts.
    fn position(&self, path: &[i32]) -> Option<(i32, i32)> {
        let location = self.0.get(path)?;
        Some((*location.span.first()? + 1, *location.span.get(1)? + 1))
    }

    /// The leading comment at `path`, trimmed, one entry per line.
    fn comment_lines(&self, path: &[i32]) -> Vec<String> {
        let Some(comment) = self.0.get(path).and_then(|l| l.leading_comments.as_deref()) else {
            return Vec::new();
        };
        let mut lines: Vec<String> = comment
            .lines()
            // Trimmed, so indented comment text never becomes a rustdoc code block.
            .map(|line| line.trim().to_owned())
            .skip_while(String::is_empty)
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{compile, ProtoInput};

    fn compiled(name: &str, source: &str) -> CompiledProtos {
        let mut input = ProtoInput::default();
        input.memory.insert(name, source);
        input.roots.push(name.to_owned());
        compile(&input).expect("compiles")
    }

    fn project(source: &str) -> Project {
        let compiled = compiled("a/v1/a.proto", source);
        build_project(
            "demo",
            &compiled,
            &KnownServices::default(),
            &Features::default(),
        )
        .expect("model")
    }

    #[test]
    fn a_discovery_kind_brings_its_module_and_dependencies() {
        let source = "syntax = \"proto3\";\npackage a.v1;\nmessage M {}\nservice S {\n  rpc Get(M) returns (M);\n}\n";
        let features = Features {
            discovery: features::DiscoveryKind::Redis,
            ..Features::default()
        };
        let project = project_with(source, &features);
        // `[discovery]` is the runtime's type, which reads every kind's keys: none is
        // ignored by name.
        let disabled = &project.disabled_keys;
        assert!(
            !disabled.iter().any(|k| k.starts_with("discovery.")),
            "{disabled:?}"
        );
        assert!(project.modules.contains(&"discovery"));
        // The registry is the runtime's, behind its feature: the project names no client.
        let runtime = |project: &Project| -> String {
            let line = project
                .dependencies
                .iter()
                .find(|line| line.name == "microframework-runtime");
            line.expect("the runtime").spec.clone()
        };
        assert!(
            runtime(&project).contains("\"redis\""),
            "{}",
            runtime(&project)
        );
        assert!(!project.dependencies.iter().any(|line| line.name == "redis"));
        let default = runtime(&project_with(source, &Features::default()));
        assert!(
            !default.contains("\"redis\"") && !default.contains("\"dns\""),
            "{default}"
        );
    }

    fn project_with(source: &str, features: &Features) -> Project {
        let compiled = compiled("a/v1/a.proto", source);
        build_project("demo", &compiled, &KnownServices::default(), features).expect("model")
    }

    #[test]
    fn the_size_limit_route_is_the_first_that_reads_one_request() {
        let mixed = project(
            "syntax = \"proto3\";\npackage a.v1;\nmessage M {}\nservice S {\n  rpc Ask(stream M) returns (M);\n  rpc Both(stream M) returns (stream M);\n  rpc Watch(M) returns (stream M);\n  rpc Zap(M) returns (M);\n}\n",
        );
        assert_eq!(mixed.one_request_route.as_deref(), Some("/a.v1.S/Watch"));
        let streams_only = project(
            "syntax = \"proto3\";\npackage a.v1;\nmessage M {}\nservice S {\n  rpc Ask(stream M) returns (M);\n}\n",
        );
        assert_eq!(streams_only.one_request_route, None);
    }

    #[test]
    fn methods_get_kinds_names_and_types() {
        let project = project(
            "syntax = \"proto3\";\npackage a.v1;\nimport \"google/protobuf/empty.proto\";\nmessage M { message Inner {} }\n// Says hi.\nservice Greeter {\n  // Unary.\n  rpc SayHello(M) returns (M.Inner);\n  rpc Watch(M) returns (stream M);\n  rpc Upload(stream M) returns (google.protobuf.Empty);\n  rpc Chat(stream M) returns (stream M);\n  rpc type(M) returns (M);\n}\n",
        );
        let service = &project.services[0];
        assert_eq!(service.full_name, "a.v1.Greeter");
        assert_eq!(service.proto_module, "proto::a::v1");
        assert_eq!(service.doc, ["Says hi."]);
        let kinds: Vec<_> = service.methods.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MethodKind::Unary,
                MethodKind::ServerStreaming,
                MethodKind::ClientStreaming,
                MethodKind::Bidirectional,
                MethodKind::Unary
            ]
        );
        let hello = &service.methods[0];
        assert_eq!(hello.rust_name, "say_hello");
        assert_eq!(hello.input, "pb::M");
        assert_eq!(hello.output, "pb::m::Inner");
        assert_eq!(hello.doc, ["Unary."]);
        assert_eq!(hello.route, "/a.v1.Greeter/SayHello");
        assert_eq!(service.methods[2].output, "()");
        assert_eq!(service.methods[4].rust_name, "r#type");
    }

    #[test]
    fn wrapper_types_are_the_primitives_prost_makes_of_them() {
        let project = project(
            "syntax = \"proto3\";\npackage a.v1;\nimport \"google/protobuf/wrappers.proto\";\nservice S {\n  rpc A(google.protobuf.StringValue) returns (google.protobuf.Int64Value);\n  rpc B(google.protobuf.BytesValue) returns (stream google.protobuf.BoolValue);\n  rpc C(stream google.protobuf.UInt32Value) returns (google.protobuf.DoubleValue);\n}\n",
        );
        let types: Vec<_> = project.services[0]
            .methods
            .iter()
            .map(|m| (m.input.as_str(), m.output.as_str()))
            .collect();
        assert_eq!(
            types,
            [("String", "i64"), ("Vec<u8>", "bool"), ("u32", "f64")]
        );
        assert!(project.wrapper_rpc_types);
    }

    #[test]
    fn services_that_replace_the_built_in_ones_are_noticed() {
        let project = project(
            "syntax = \"proto3\";\npackage grpc.health.v1;\nmessage HealthCheckRequest { string service = 1; }\nmessage HealthCheckResponse { int32 status = 1; }\nservice Health {\n  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);\n  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);\n}\n",
        );
        assert!(!project.builtin_health);
        assert!(project.services[0].replaces_health);
        assert!(!project.wrapper_rpc_types);
    }

    #[test]
    fn todays_health_proto_with_list_is_served_and_reflection_as_a_root_is_left_to_the_built_in_one(
    ) {
        let health = project(
            "syntax = \"proto3\";\npackage grpc.health.v1;\nmessage HealthCheckRequest { string service = 1; }\nmessage HealthCheckResponse { int32 status = 1; }\nmessage HealthListRequest {}\nmessage HealthListResponse { map<string, HealthCheckResponse> statuses = 1; }\nservice Health {\n  rpc Check(HealthCheckRequest) returns (HealthCheckResponse);\n  rpc List(HealthListRequest) returns (HealthListResponse);\n  rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse);\n}\n",
        );
        assert!(health.services[0].replaces_health);
        let methods: Vec<&str> = health.services[0]
            .methods
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(methods, ["Check", "List", "Watch"]);

        let reflection = "syntax = \"proto3\";\npackage grpc.reflection.v1;\nmessage ServerReflectionRequest {}\nmessage ServerReflectionResponse {}\nservice ServerReflection {\n  rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse);\n}\n";
        let only = compiled("grpc/reflection/v1/reflection.proto", reflection);
        let err = build_project(
            "demo",
            &only,
            &KnownServices::default(),
            &Features::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("defines only grpc.reflection"), "{err}");
        let odd = reflection.replace(
            "stream ServerReflectionResponse",
            "ServerReflectionResponse",
        );
        let odd = compiled("grpc/reflection/v1/reflection.proto", &odd);
        let err = build_project(
            "demo",
            &odd,
            &KnownServices::default(),
            &Features::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("not as grpc/reflection/v1/reflection.proto declares it"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_services_is_refused() {
        let compiled = compiled("m.proto", "syntax = \"proto3\";\nmessage M {}\n");
        let err = build_project(
            "demo",
            &compiled,
            &KnownServices::default(),
            &Features::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("m.proto: declares no `service`"), "{err}");
    }
}
