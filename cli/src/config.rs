//! The CLI's view of the settings (`ops_app::settings`): its global flags
//! mapped onto [`Overrides`], and the default output format as a
//! [`Format`].

use anyhow::Result;
pub use ops_app::settings::Settings as Config;
pub use ops_app::settings::{Overrides, SETTINGS, Source, shown};

use crate::args::{Format, GlobalArgs};

/// Resolves the settings with the global flags over everything else.
pub fn resolve(global: &GlobalArgs, strict: bool) -> Result<Config> {
    let overrides = Overrides {
        home: global.home.clone(),
        store: global.store.clone(),
        namespace: global.namespace.clone(),
        known_hosts: global.known_hosts.clone(),
        forks: global.forks,
        nats: global.nats.clone(),
    };
    Config::resolve(&overrides, strict)
}

/// The configured default output format.
pub fn output(cfg: &Config) -> Format {
    <Format as clap::ValueEnum>::from_str(&cfg.output, true).unwrap_or(Format::Table)
}
