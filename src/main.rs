//! The `tinbao` binary: parse arguments, dispatch to `tinbao::cli`, turn the result into an exit
//! code. Nothing else lives here.

use clap::Parser;
use tinbao::cli::{self, Cli, Command};

fn main() {
    tinbao::allocator::configure();
    let args = Cli::parse();
    cli::init_logging(args.log_format);
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tinbao: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: Cli) -> anyhow::Result<i32> {
    match args.command {
        Command::Check => cli::check(&args.config),
        Command::Match { query } => Ok(cli::match_lines(&query)),
        command => {
            // Parsing, clustering and matching run on tokio's blocking threads, and tokio starts
            // another whenever all are busy (up to 512). Each thread keeps memory the allocator
            // gave it: a cold poll of 1,000 feeds peaked at 430 MB with dozens of threads, and
            // at 100 MB with 4 on 2 cores, as fast (BENCHMARKS.md).
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads((2 * cores).clamp(4, 16))
                .build()?;
            runtime.block_on(async_command(&args.config, command))
        }
    }
}

async fn async_command(config: &std::path::Path, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Poll { once, all } => cli::poll(cli::load_config(config)?, once, all).await,
        Command::Feeds { json } => cli::feeds(cli::load_config(config)?, json).await,
        Command::Inspect {
            source,
            json,
            html,
            full_text,
        } => cli::inspect(config, &source, json, &html, full_text.as_deref()).await,
        Command::Demo { dir, listen, once } => tinbao::demo::run(&dir, &listen, once).await,
        Command::Run { once: true, all } => {
            tinbao::worker::once::run(cli::load_config(config)?, all).await
        }
        Command::Run { once: false, .. } => {
            tinbao::worker::daemon::run(config.to_path_buf(), cli::load_config(config)?).await
        }
        Command::Discover { url, json } => cli::discover(config, &url, json).await,
        Command::Import {
            what: cli::ImportWhat::Opml { file, dry_run },
        } => cli::import_opml(config, &file, dry_run),
        Command::Subscribers { action } => {
            cli::subscribers(cli::load_config(config)?, action).await
        }
        Command::Digest { now, to, dry_run } => {
            cli::digest(cli::load_config(config)?, now, to, dry_run).await
        }
        Command::Check | Command::Match { .. } => unreachable!("handled without a runtime"),
    }
}
