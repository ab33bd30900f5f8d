//! One module per subcommand, wiring the stages together; the logic lives in the stages.

pub mod check;
pub mod gen;
pub mod gen_proto;
pub mod new;
pub mod pipeline;
pub mod templates;

use clap::CommandFactory;

use crate::{
    cli::{Cli, Command, GenCommand, TemplatesCommand},
    report::Verbosity,
};

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
            None => gen::run(
                args.project.as_deref(),
                args.dry_run,
                args.force,
                args.upgrade_deploy,
                &args.features,
                verbosity,
            ),
        },
        Command::Check(args) => check::run(args.project.as_deref(), args.strict, verbosity),
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
