//! The supervisor's side of the shared configuration file
//! ([`crate::config::shared`]): reading the unit configuration with it (or
//! with a text in its place, to validate what the partner sends), and
//! putting a new one in force without a restart — the virtual addresses,
//! routes and timeouts go to the workers, the HA parameters are read again.

use super::*;
use crate::config::UnitConfig;
use dataplane::control::LiveConfig;

/// The unit's configuration files, as `tandemd` was given them.
#[derive(Debug, Clone)]
pub struct UnitFiles {
    /// The unit file (`--config`).
    pub unit: PathBuf,
    /// The shared file (`--shared`), if any.
    pub shared: Option<PathBuf>,
    /// The hardware profile they are checked against.
    pub profile: hw_profiles::Profile,
}

fn name_of(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

impl<U: Managed> State<U> {
    /// The unit file's name, for messages.
    pub(super) fn unit_file_name(&self) -> String {
        self.settings.files.as_ref().map_or_else(
            || "the unit file".to_owned(),
            |f| f.unit.display().to_string(),
        )
    }

    /// Whether `name` is the shared file's (as `hasync` names files).
    pub(super) fn is_shared_file(&self, name: &str) -> bool {
        self.settings
            .files
            .as_ref()
            .and_then(|f| f.shared.as_deref())
            .is_some_and(|p| name_of(p) == name)
    }

    /// The unit configuration as the files say now, or with `shared` as the
    /// shared file's text; the refusal names file, line and column.
    pub(super) fn read_config(&self, shared: Option<&str>) -> Result<UnitConfig, String> {
        let Some(files) = &self.settings.files else {
            return Err("the unit's configuration files are not known here".into());
        };
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let unit = read(&files.unit)?;
        let unit_name = files.unit.display().to_string();
        let shared_text = match (shared, &files.shared) {
            (Some(text), Some(path)) => Some((text.to_owned(), name_of(path))),
            (None, Some(path)) => Some((read(path)?, path.display().to_string())),
            (_, None) => None,
        };
        UnitConfig::parse_with_shared(
            &unit,
            &unit_name,
            shared_text.as_ref().map(|(t, n)| (t.as_str(), n.as_str())),
            &files.profile,
        )
        .map_err(|e| e.to_string())
    }

    /// Puts `text` in force as the shared file: validated with this unit's
    /// own file, written atomically, then the virtual addresses, routes and
    /// timeouts go to the workers.
    pub(super) fn apply_shared(&mut self, origin: Origin, text: &str) -> Reply {
        let Some(path) = self.settings.files.as_ref().and_then(|f| f.shared.clone()) else {
            return Err("the unit was started without --shared".into());
        };
        let config = self
            .read_config(Some(text))
            .map_err(|e| shared_refused(origin, e))?;
        atomic_file::write(&path, text.as_bytes())
            .map_err(|e| shared_refused(origin, format!("{}: {e}", path.display())))?;
        Ok(self.shared_in_force(&config, origin, "applied"))
    }

    /// Reads the shared file again and puts it in force (`reload`, SIGHUP);
    /// `None` when the unit has none.
    pub(super) fn reload_shared(&mut self, origin: Origin) -> Option<Reply> {
        self.settings.files.as_ref()?.shared.as_ref()?;
        Some(match self.read_config(None) {
            Ok(config) => Ok(self.shared_in_force(&config, origin, "reloaded")),
            Err(e) => Err(shared_refused(origin, e)),
        })
    }

    fn shared_in_force(&mut self, config: &UnitConfig, origin: Origin, what: &str) -> String {
        self.settings.unit.set_config(&Arc::new(LiveConfig {
            router: config.router.clone(),
            timeouts: config.timeouts,
        }));
        let weights = config
            .ha
            .as_ref()
            .and_then(|ha| self.put_weights(&ha.election.weights));
        self.files_changed();
        let mut text = format!(
            "shared configuration {what}: {} virtual address(es), {} route(s)",
            config
                .router
                .interfaces
                .iter()
                .filter(|i| i.virtual_ip.is_some())
                .count(),
            config.router.routes.len()
        );
        if let Some(w) = weights {
            text.push_str(&format!("; {w}"));
        }
        tracing::info!("{text} (from the {})", origin.name());
        text
    }
}

/// A refused shared file, logged with who asked.
fn shared_refused(origin: Origin, why: impl std::fmt::Display) -> String {
    let text = format!("shared configuration refused, the one in force stays: {why}");
    tracing::warn!("{text} (from the {})", origin.name());
    text
}
