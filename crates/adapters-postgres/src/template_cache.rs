//! The template catalogue, kept in memory: it changes only with a migration, and every render
//! and purchase looks its template up, so reading it from the database each time would double
//! the round trips of the paid path. Reloaded after [`CATALOGUE_TTL`] so that a catalogue
//! migrated while instances run is picked up without a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keys_domain::template::Template;

/// How long a loaded catalogue is served.
pub(crate) const CATALOGUE_TTL: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct TemplateCache {
    loaded: Mutex<Option<(Instant, Arc<Vec<Template>>)>>,
}

impl TemplateCache {
    /// The catalogue in display order, if loaded less than the TTL ago.
    pub(crate) fn get(&self) -> Option<Arc<Vec<Template>>> {
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded
            .as_ref()
            .filter(|(at, _)| at.elapsed() < CATALOGUE_TTL)
            .map(|(_, templates)| templates.clone())
    }

    pub(crate) fn put(&self, templates: Vec<Template>) -> Arc<Vec<Template>> {
        let templates = Arc::new(templates);
        *self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), templates.clone()));
        templates
    }
}
