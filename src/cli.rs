//! Command-line arguments (clap derive); the logic lives in the library modules.

use std::path::PathBuf;

use clap::{
    builder::{PossibleValue, PossibleValuesParser, TypedValueParser},
    Parser, Subcommand, ValueEnum,
};

use crate::model::features::{
    AuthKind, DatabaseKind, DeployKind, DiscoveryKind, Features, Kind, MonitoringKind, TlsKind,
    TracingKind,
};

/// A parser of a feature's kinds, listing each with its description in `--help`.
fn kind<K: Kind + Send + Sync + Clone>() -> impl TypedValueParser<Value = K> {
    let values = K::KINDS
        .iter()
        .map(|(_, name, doc)| PossibleValue::new(*name).help(*doc));
    PossibleValuesParser::new(values)
        .map(|name| K::from_name(&name).unwrap_or_else(|| unreachable!("clap checked `{name}`")))
}

/// Generates production-grade gRPC microservices on tonic.
#[derive(Debug, Parser)]
#[command(name = "microframework", version, about, long_about = None)]
pub struct Cli {
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also list every file written.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new service project.
    New(NewArgs),
    /// Regenerate the project in this directory (or --project): rewrite tool-owned files,
    /// write missing ones, never touch yours. `gen proto` writes a spec's proto.
    Gen(GenArgs),
    /// Exit 1 when generated files drifted from what `gen` writes, or a proto method has no
    /// implementation; for CI.
    Check(CheckArgs),
    /// List or export the built-in templates.
    Templates(TemplatesArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Arguments of `microframework templates`.
#[derive(Debug, clap::Args)]
pub struct TemplatesArgs {
    /// What to do with the templates.
    #[command(subcommand)]
    pub command: TemplatesCommand,
}

/// The `templates` subcommands.
#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// List every template with the file it produces and who owns that file.
    List,
    /// Write every template into DIR (which must not exist or be empty), to edit and pass
    /// back with `new --templates DIR`.
    Export {
        /// Directory to write the templates into.
        dir: PathBuf,
    },
}

/// Arguments of `microframework completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `microframework gen`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GenArgs {
    /// Generate something else than the project.
    #[command(subcommand)]
    pub command: Option<GenCommand>,
    /// The project directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print what would change, with diffs, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite tool-owned files even where they were edited.
    #[arg(long)]
    pub force: bool,
    /// Move deploy/k8s to the current layout (the overlays make or reference the Secrets, the
    /// autoscaler alone sets the replicas): rewrites deploy/k8s/overlays/*/kustomization.yaml,
    /// keeping each old one beside it as kustomization.yaml.orig.
    #[arg(long)]
    pub upgrade_deploy: bool,
    /// Switch production features; the choice is recorded in microframework.toml.
    #[command(flatten)]
    pub features: FeatureArgs,
}

/// The production features of a service, as flags of `new` and `gen`; a flag left out keeps
/// the default (`new`) or the recorded choice (`gen`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FeatureArgs {
    /// JWT authentication of incoming calls [default: jwt].
    #[arg(long, value_parser = kind::<AuthKind>(), value_name = "KIND")]
    pub auth: Option<AuthKind>,
    /// Serve gRPC over TLS (mTLS with a client CA); `--tls=false` turns it off [default: off].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tls: Option<bool>,
    /// Prometheus metrics at /metrics on METRICS_PORT [default: prometheus].
    #[arg(long = "with-monitoring", value_parser = kind::<MonitoringKind>(), value_name = "KIND")]
    pub monitoring: Option<MonitoringKind>,
    /// OTLP span export, as the `otlp` cargo feature [default: none].
    #[arg(long = "with-tracing", value_parser = kind::<TracingKind>(), value_name = "KIND")]
    pub tracing: Option<TracingKind>,
    /// Where instances register and clients find them [default: static].
    #[arg(long, value_parser = kind::<DiscoveryKind>(), value_name = "KIND")]
    pub discovery: Option<DiscoveryKind>,
    /// Dockerfile, compose, Kubernetes, systemd and CI files [default: all].
    #[arg(long, value_parser = kind::<DeployKind>(), value_name = "KIND")]
    pub deploy: Option<DeployKind>,
    /// Where the resources' records are kept: memory, postgres [default: memory].
    #[arg(long = "with-database", value_parser = kind::<DatabaseKind>(), value_name = "KIND")]
    pub database: Option<DatabaseKind>,
}

impl FeatureArgs {
    /// `base` with the flags given applied.
    pub fn apply(&self, base: Features) -> Features {
        Features {
            auth: self.auth.unwrap_or(base.auth),
            tls: self.tls.map_or(base.tls, TlsKind::from_flag),
            monitoring: self.monitoring.unwrap_or(base.monitoring),
            tracing: self.tracing.unwrap_or(base.tracing),
            discovery: self.discovery.unwrap_or(base.discovery),
            deploy: self.deploy.unwrap_or(base.deploy),
            database: self.database.unwrap_or(base.database),
            kubernetes_layout: base.kubernetes_layout,
        }
    }
}

/// Arguments of `microframework check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The project directory (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Treat proto style findings as errors, not warnings.
    #[arg(long)]
    pub strict: bool,
}

/// The things `gen` makes.
#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// Write the proto3 file a service spec describes.
    Proto(GenProtoArgs),
}

/// Arguments of `microframework gen proto`.
#[derive(Debug, clap::Args)]
pub struct GenProtoArgs {
    /// The TOML service spec.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// Where to write the proto (default: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `microframework new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Project name, such as `user-service`: lowercase words joined by `-` or `_`.
    pub name: String,
    /// Kind of service to generate.
    #[arg(long = "type", value_enum, default_value_t = ServiceType::Grpc)]
    pub service_type: ServiceType,
    /// Directory to create (default: ./NAME). It must not exist or be empty.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Root .proto files: every service in them is served (repeat or list several).
    #[arg(long = "proto", value_name = "FILE", num_args = 1..)]
    pub protos: Vec<PathBuf>,
    /// A TOML service spec: its resources get a working in-memory implementation.
    #[arg(long, value_name = "FILE", conflicts_with = "protos")]
    pub spec: Option<PathBuf>,
    /// Print the files the project would have, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Templates that replace built-in ones of the same path (see `templates export`).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Directories where imports are looked up, in order (like protoc's -I).
    #[arg(short = 'I', long = "include", value_name = "DIR", requires = "protos")]
    pub includes: Vec<PathBuf>,
    /// Production features of the service.
    #[command(flatten)]
    pub features: FeatureArgs,
}

/// Kinds of service the tool generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceType {
    /// A tonic gRPC server with health, reflection, graceful shutdown and a typed client.
    Grpc,
}
