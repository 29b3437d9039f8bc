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
//! A multi-call binary: installed (linked) under a console command's name
//! ([`CONSOLE_COMMANDS`]), it is that command — `hamode`, `haactive
//! --socket S` — as operators type it on the appliance's serial console.
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
    /// Link every console command (hainfo, hamode, ...) to this binary in
    /// DIR (e.g. /usr/local/sbin), so that operators type `hainfo`; then exit.
    #[arg(long, value_name = "DIR", exclusive = true)]
    install_links: Option<PathBuf>,
    /// The command and its arguments, e.g. `conns proto tcp port 80`.
    #[arg(
        required_unless_present = "install_links",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

/// The console commands this binary also is, when invoked by that name.
pub const CONSOLE_COMMANDS: [&str; 10] = [
    "hainfo",
    "hamode",
    "hasync",
    "hasynctest",
    "hadiff",
    "enha",
    "halog",
    "haactive",
    "hapassive",
    "hareset",
];

/// A console command's options (invoked by its own name).
#[derive(Parser, Debug)]
struct ConsoleArgs {
    /// The unit's control socket.
    #[arg(long, alias = "control", default_value = control::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// The command's arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// The console command this process was invoked as, if any.
fn invoked_as() -> Option<&'static str> {
    let argv0 = std::env::args_os().next()?;
    let name = std::path::Path::new(&argv0)
        .file_name()?
        .to_str()?
        .to_owned();
    CONSOLE_COMMANDS.into_iter().find(|c| *c == name)
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
    let parsed = match invoked_as() {
        Some(name) => ConsoleArgs::try_parse().map(|c| Args {
            socket: c.socket,
            timeout: c.timeout,
            install_links: None,
            command: std::iter::once(name.to_owned()).chain(c.args).collect(),
        }),
        None => Args::try_parse(),
    };
    let args = match parsed {
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

/// Links every console command to this binary in `dir` (an existing link
/// of that name is replaced; any other file is left and reported).
fn install_links(dir: &std::path::Path) -> Result<ExitCode, ExitCode> {
    let me = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            emit(
                io::stderr(),
                &format!("tandemctl: where is this binary? {e}\n"),
            )?;
            return Ok(ExitCode::from(1));
        }
    };
    let mut failed = false;
    for name in CONSOLE_COMMANDS {
        let link = dir.join(name);
        let is_link = std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink());
        if is_link {
            let _ = std::fs::remove_file(&link);
        }
        match std::os::unix::fs::symlink(&me, &link) {
            Ok(()) => emit(
                io::stdout(),
                &format!("{} -> {}\n", link.display(), me.display()),
            )?,
            Err(e) => {
                failed = true;
                emit(
                    io::stderr(),
                    &format!("tandemctl: {}: {e}\n", link.display()),
                )?;
            }
        }
    }
    Ok(ExitCode::from(u8::from(failed)))
}

fn run(args: &Args) -> Result<ExitCode, ExitCode> {
    if let Some(dir) = &args.install_links {
        return install_links(dir);
    }
    if let Some(w) = args
        .command
        .iter()
        .find(|w| w.is_empty() || w.chars().any(char::is_whitespace))
    {
        emit(io::stderr(), &format!("tandemctl: error: argument {w:?} is empty or holds whitespace; the request is one line of words\n"))?;
        return Ok(ExitCode::from(2));
    }
    let line = args.command.join(" ");
    let path = &args.socket;
    let timeout = Duration::from_secs(args.timeout);
    // `hasync [-v] [--json]` runs the steps; a step (`hasync begin`) is a request.
    if args.command[0] == "hasync" && args.command[1..].iter().all(|w| w.starts_with('-')) {
        return hasync(args, &args.command[1..]);
    }
    if let Err(e) = request::parse(&line) {
        emit(io::stderr(), &format!("error: {e}\n"))?;
        return Ok(ExitCode::from(2));
    }
    if args.command[0] == "hainfo" && args.command.iter().any(|w| w == "-v") {
        emit(
            io::stdout(),
            &format!("connecting to the local unit at {}\n", path.display()),
        )?;
    }
    match control::request(path, &versioned(&line), timeout) {
        Ok(answer) if answer.starts_with("error:") => {
            emit(io::stderr(), &answer)?;
            Ok(ExitCode::from(1))
        }
        Ok(answer) => {
            emit(io::stdout(), &answer)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            emit(io::stderr(), &format!("{}\n", unreachable(path, &e)))?;
            Ok(ExitCode::from(3))
        }
    }
}

/// The request line with the control protocol version this console speaks.
fn versioned(line: &str) -> String {
    format!("@{} {line}", request::CONTROL_PROTOCOL)
}

/// Why the local unit could not be reached, in words a person can act on.
fn unreachable(path: &std::path::Path, e: &io::Error) -> String {
    let why = match e.kind() {
        io::ErrorKind::NotFound => format!("no control socket at {}", path.display()),
        io::ErrorKind::PermissionDenied => format!(
            "permission denied on {} (the console is root's)",
            path.display()
        ),
        io::ErrorKind::ConnectionRefused => {
            format!("nothing answers on {} (the unit stopped?)", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    };
    format!(
        "cannot reach the local unit: {why} (is tandemd running with this --control? see --socket)"
    )
}

/// `hasync [-v] [--json]`: the steps of a configuration sync, each row
/// printed as its step ends (see `mgmt::console::hasync`).
fn hasync(args: &Args, options: &[String]) -> Result<ExitCode, ExitCode> {
    let (mut verbose, mut json) = (false, false);
    for o in options {
        match o.as_str() {
            "-v" => verbose = true,
            "--json" => json = true,
            other => {
                emit(
                    io::stderr(),
                    &format!("error: hasync: unknown argument `{other}`; options: -v, --json\n"),
                )?;
                return Ok(ExitCode::from(2));
            }
        }
    }
    let timeout = Duration::from_secs(args.timeout);
    let mut unit_unreachable = false;
    let mut ask = |line: &str| match control::request(&args.socket, &versioned(line), timeout) {
        Ok(answer) if answer.starts_with("error:") => Err(answer),
        Ok(answer) => Ok(answer),
        Err(e) => {
            unit_unreachable = true;
            Err(unreachable(&args.socket, &e))
        }
    };
    let mut closed = None;
    let mut out = |line: &str| {
        if closed.is_none() {
            closed = emit(io::stdout(), &format!("{line}\n")).err();
        }
    };
    let ok = mgmt::console::hasync::run(&mut ask, &mut out, verbose, json);
    if let Some(code) = closed {
        return Err(code);
    }
    Ok(match (ok, unit_unreachable) {
        (true, _) => ExitCode::SUCCESS,
        (false, true) => ExitCode::from(3),
        (false, false) => ExitCode::from(1),
    })
}
