//! `tandemctl`: asks a running unit one thing over its control socket and
//! prints the answer (see `mgmt::control` for the protocol).
//!
//! ```text
//! tandemctl counters --nonzero drop.
//! tandemctl conns proto tcp port 80
//! tandemctl --socket /tmp/lab/control.sock rules
//! tandemctl reload
//! ```
//!
//! Exit status: 0 for an answer, 1 for an `error:` answer (printed on
//! stderr), 2 for a request refused before sending it (same messages as the
//! unit's), 3 when the unit cannot be reached or does not answer in time.
#![forbid(unsafe_code)]

use clap::Parser;
use mgmt::control::{self, request};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Ask a running tandem unit: counters, conns, rules, reload, help.
#[derive(Parser, Debug)]
#[command(version, after_help = request::HELP)]
struct Args {
    /// The unit's control socket (tandemd's --control).
    #[arg(long, default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The command and its arguments, e.g. `conns proto tcp port 80`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(w) = args
        .command
        .iter()
        .find(|w| w.is_empty() || w.chars().any(char::is_whitespace))
    {
        eprintln!("tandemctl: error: argument {w:?} is empty or holds whitespace; the request is one line of words");
        return ExitCode::from(2);
    }
    let line = args.command.join(" ");
    if let Err(e) = request::parse(&line) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let path = &args.socket;
    match control::request(path, &line, Duration::from_secs(args.timeout)) {
        Ok(answer) if answer.starts_with("error:") => {
            eprint!("{answer}");
            ExitCode::from(1)
        }
        Ok(answer) => {
            print!("{answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "tandemctl: cannot reach tandemd at {}: {e} (is it running, and is this its --control path? see --socket)",
                path.display()
            );
            ExitCode::from(3)
        }
    }
}
