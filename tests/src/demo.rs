//! What the demos (`lab-demo`, `pair-demo`) share: numbered steps, the exit
//! status, the file the client downloads, and the check that a lab left
//! nothing behind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::netns::Netns;
use crate::process::Proc;
use crate::{blob, plan, services};

/// The demos' error type.
pub type DemoError = Box<dyn std::error::Error>;

/// Prints step `n`'s title.
pub fn step(n: u32, title: &str) {
    println!("\n== {n}. {title}");
}

/// The demo's exit status: success, or its error on stderr and failure.
pub fn exit(name: &str, result: Result<(), DemoError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\n{name} failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `mb` megabytes of random bytes in `dir/www/blob`, served over HTTP by
/// `python3 -m http.server` on the server's port 80 (its logs `dir/http`):
/// the server, and the file a download is compared with.
pub fn serve_blob(server: &Netns, dir: &Path, mb: u64) -> Result<(Proc, PathBuf), DemoError> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    let blob = www.join("blob");
    blob::write_random(&blob, mb * 1_000_000)?;
    let http = services::http_server(server, &www, plan::SERVER_IP, 80, &dir.join("http"))?;
    Ok((http, blob))
}

/// Says that the lab's namespaces `names` are gone, or fails naming those
/// left behind.
pub fn check_removed(names: &[String]) -> Result<(), DemoError> {
    let left: Vec<String> = crate::netns::list()?
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    if left.is_empty() {
        println!("namespaces {} removed", names.join(", "));
        Ok(())
    } else {
        Err(format!("namespaces left behind: {}", left.join(", ")).into())
    }
}
