//! microframework turns a service name, `.proto` files or a service spec into a complete tonic
//! gRPC project. The pipeline runs one way:
//! input -> model -> plan -> render -> write -> report.

pub mod cli;
pub mod gen_proto;
pub mod input;
pub mod lint;
pub mod manifest;
pub mod model;
pub mod naming;
pub mod new;
pub mod plan;
pub mod project_file;
pub mod regen;
pub mod render;
pub mod report;
pub mod spec;
pub mod templates;
pub mod write;

use clap::CommandFactory;
use cli::{Cli, Command, GenCommand, TemplatesCommand};
use report::Verbosity;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let verbosity = if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    match cli.command {
        Command::New(args) => new::run(&args, verbosity),
        Command::Gen(args) => match args.command {
            Some(GenCommand::Proto(args)) => gen_proto::run(&args, verbosity),
            None => regen::run_gen(
                args.project.as_deref(),
                args.dry_run,
                args.force,
                &args.features,
                verbosity,
            ),
        },
        Command::Check(args) => regen::run_check(args.project.as_deref(), args.strict, verbosity),
        Command::Templates(args) => match args.command {
            TemplatesCommand::List => templates::list(),
            TemplatesCommand::Export { dir } => templates::export(&dir, verbosity),
        },
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(
                args.shell,
                &mut command,
                "microframework",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}
