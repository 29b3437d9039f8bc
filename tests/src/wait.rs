//! Bounded polling: every wait in the harness has a deadline.

use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often a condition is re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `check` until it returns `Ok(Some(value))`, an error, or `timeout`
/// passes ([`Error::WaitTimeout`] naming `what`). `check` runs at least once.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    poll_until_detail(what, timeout, || check().map(|v| v.ok_or(String::new())))
}

/// Like [`poll_until`], but `check` explains what it saw when the condition
/// is not met yet (`Err(last_state)`), and the timeout error shows the last
/// explanation.
pub fn poll_until_detail<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Result<T, String>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check()? {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(Error::WaitTimeout {
                what: what.to_string(),
                timeout,
                detail: if last.is_empty() {
                    String::new()
                } else {
                    format!("\nlast seen:\n{last}")
                },
            });
        }
        thread::sleep(POLL_INTERVAL);
    }
}
