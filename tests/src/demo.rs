//! What the demos (`lab-demo`, `pair-demo`) share: numbered steps, the exit
//! status, and the check that a lab left nothing behind.

use std::process::ExitCode;

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
