//! `waflow migrate --to URL`: the SQLite store of the config copied into a
//! new, empty PostgreSQL database, so a switch of `store:` loses nothing —
//! the open work, the history that keeps duplicates out, the opt-out list.

use super::output::Output;
use super::{Cli, CliError};
use crate::config::StoreLocation;

/// `waflow migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into (new and empty):
    /// postgres://user:password@host/database, or ${VARIABLE} for one from
    /// the environment
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// Copies the store and says what was copied.
pub fn run(cli: &Cli, args: &MigrateArgs, out: &Output) -> Result<(), CliError> {
    let config = super::load_config(cli)?;
    let StoreLocation::File(file) = &config.store else {
        return Err(CliError::Invalid(
            "the config's store is not an SQLite file: migrate copies an SQLite store into PostgreSQL".into(),
        ));
    };
    let url = resolve(&args.to)?;
    let copied = crate::store::copy::sqlite_to_postgres(file, &url, crate::units::now_ms())
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let total: u64 = copied.iter().map(|(_, n)| n).sum();
    let mut text = format!("copied {total} rows from {}:\n", file.display());
    for (table, rows) in &copied {
        text.push_str(&format!("  {table}: {rows}\n"));
    }
    text.push_str("now set `store:` to the PostgreSQL address and start the daemon on it");
    let tables: serde_json::Map<String, serde_json::Value> = copied
        .iter()
        .map(|(t, n)| ((*t).to_owned(), (*n).into()))
        .collect();
    out.success(
        &text,
        serde_json::json!({ "copied": tables, "rows": total }),
    );
    Ok(())
}

/// The address, `${VARIABLE}` read from the environment.
fn resolve(to: &str) -> Result<String, CliError> {
    let url = match to
        .trim()
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
    {
        Some(var) => std::env::var(var)
            .map_err(|_| CliError::Invalid(format!("--to names ${{{var}}}, which is not set")))?,
        None => to.trim().to_owned(),
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(CliError::Invalid(
            "--to takes a PostgreSQL address: postgres://user:password@host/database".into(),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_checked_before_anything_is_read() {
        assert!(resolve("postgres://u@db/w").is_ok());
        let wrong = resolve("mysql://u@db/w").unwrap_err().to_string();
        assert!(wrong.contains("takes a PostgreSQL address"), "{wrong}");
        let unset = resolve("${WAFLOW_TEST_NO_SUCH_VARIABLE}")
            .unwrap_err()
            .to_string();
        assert!(
            unset.contains("${WAFLOW_TEST_NO_SUCH_VARIABLE}, which is not set"),
            "{unset}"
        );
    }
}
