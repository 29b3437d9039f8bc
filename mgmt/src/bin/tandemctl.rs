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
//! Output to a closed pipe (`tandemctl rules | head -2`) ends it quietly,
//! as it ends any Unix tool, with the status a SIGPIPE death would give
//! (141).
#![forbid(unsafe_code)]

use clap::Parser;
use mgmt::console::request;
use mgmt::control;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Ask a running tandem unit: counters, conns, rules, sync, reload, help.
#[derive(Parser, Debug)]
#[command(version, after_help = request::HELP)]
struct Args {
    /// The unit's control socket (tandemd's --control, which is accepted too).
    #[arg(long, alias = "control", default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The command and its arguments, e.g. `conns proto tcp port 80`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// What a shell shows for a process killed by SIGPIPE (128 + 13).
const CLOSED_PIPE: u8 = 141;

/// Writes `text` to stdout or stderr; a closed reader ends the program
/// quietly, any other failure with status 3.
fn emit(mut out: impl Write, text: &str) -> Result<(), ExitCode> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ExitCode::from(CLOSED_PIPE)),
        Err(_) => Err(ExitCode::from(3)),
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // `--help` and `--version` are answers (stdout, 0); the rest is a refusal.
            let code = if e.use_stderr() { 2 } else { 0 };
            let text = e.render().to_string();
            let shown = if e.use_stderr() {
                emit(io::stderr(), &text)
            } else {
                emit(io::stdout(), &text)
            };
            return shown.err().unwrap_or(ExitCode::from(code));
        }
    };
    run(&args).unwrap_or_else(|code| code)
}

fn run(args: &Args) -> Result<ExitCode, ExitCode> {
    if let Some(w) = args
        .command
        .iter()
        .find(|w| w.is_empty() || w.chars().any(char::is_whitespace))
    {
        emit(io::stderr(), &format!("tandemctl: error: argument {w:?} is empty or holds whitespace; the request is one line of words\n"))?;
        return Ok(ExitCode::from(2));
    }
    let line = args.command.join(" ");
    if let Err(e) = request::parse(&line) {
        emit(io::stderr(), &format!("error: {e}\n"))?;
        return Ok(ExitCode::from(2));
    }
    let path = &args.socket;
    match control::request(path, &line, Duration::from_secs(args.timeout)) {
        Ok(answer) if answer.starts_with("error:") => {
            emit(io::stderr(), &answer)?;
            Ok(ExitCode::from(1))
        }
        Ok(answer) => {
            emit(io::stdout(), &answer)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            emit(io::stderr(), &format!(
                "tandemctl: cannot reach tandemd at {}: {e} (is it running, and is this its --control path? see --socket)\n",
                path.display()
            ))?;
            Ok(ExitCode::from(3))
        }
    }
}
