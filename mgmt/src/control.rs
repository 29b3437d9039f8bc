//! The control socket: placeholder until the control protocol lands.

use crate::unit::Unit;
use std::path::Path;

/// The unit's end of the control socket.
pub struct ControlServer;

impl ControlServer {
    /// Binds the socket.
    pub fn bind(_path: &Path) -> std::io::Result<Self> {
        Ok(ControlServer)
    }

    /// Answers whatever requests are waiting, without blocking.
    pub fn serve(&self, _unit: &Unit, _reload: &dyn Fn() -> Result<String, String>) {}
}
