//! `server.console`: the web console's access (SPEC §8). `off` turns the
//! console off; a map sets the password (or its argon2 hash) and how long
//! the decision trail is kept. Without a password the daemon makes a login
//! token at each start and logs it once as a ready link.

use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;
use crate::units::HumanDuration;

/// The console's settings; `None` in the config when it is off.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleConfig {
    /// The login password.
    pub password: Option<Secret>,
    /// Its argon2 hash (PHC string, `$argon2id$…`), instead of the password.
    pub password_hash: Option<String>,
    /// How long events keep their decision trail (`console.keep`).
    pub keep: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            password: None,
            password_hash: None,
            keep: Duration::from_secs(30 * 86_400),
        }
    }
}

/// `server.console` as written: `off`/`on`, or a map.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConsoleRaw {
    /// `off` (or `on`).
    Switch(String),
    /// `{password, password_hash, keep}`.
    Table(ConsoleTable),
}

/// The map form of `server.console`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleTable {
    /// The login password (`${CONSOLE_PASSWORD}`).
    pub password: Option<String>,
    /// An argon2 hash of it (`$argon2id$v=19$…`).
    pub password_hash: Option<String>,
    /// How long the decision trail is kept (default 30d).
    pub keep: Option<HumanDuration>,
}

/// The console's settings, or why they are wrong.
pub fn compile(raw: Option<&ConsoleRaw>) -> Result<Option<ConsoleConfig>, (String, String)> {
    let table = match raw {
        None => return Ok(Some(ConsoleConfig::default())),
        Some(ConsoleRaw::Switch(s)) if s.trim() == "off" => return Ok(None),
        Some(ConsoleRaw::Switch(s)) if s.trim() == "on" => {
            return Ok(Some(ConsoleConfig::default()));
        }
        Some(ConsoleRaw::Switch(s)) => {
            return Err((
                format!("server.console: `{s}` is neither `off` nor a map"),
                "write `console: off`, or `console: { password: ${CONSOLE_PASSWORD} }`".into(),
            ));
        }
        Some(ConsoleRaw::Table(t)) => t,
    };
    let password = table.password.clone().and_then(Secret::new);
    let password_hash = table
        .password_hash
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    if password.is_some() && password_hash.is_some() {
        return Err((
            "server.console: give `password` or `password_hash`, not both".into(),
            "keep the hash; the password then stays out of the config".into(),
        ));
    }
    if let Some(hash) = &password_hash
        && !hash.starts_with("$argon2")
    {
        return Err((
            "server.console.password_hash is not an argon2 hash".into(),
            "make one with the argon2 tool: printf %s \"$PASSWORD\" | argon2 \"$(openssl rand -hex 8)\" -id -e".into(),
        ));
    }
    Ok(Some(ConsoleConfig {
        password,
        password_hash,
        keep: table
            .keep
            .map_or(ConsoleConfig::default().keep, HumanDuration::get),
    }))
}
