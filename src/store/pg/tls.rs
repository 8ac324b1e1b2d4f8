//! The PostgreSQL address read into the driver's settings and how the
//! connection is secured. `sslmode=require` (or libpq's `verify-ca` and
//! `verify-full`) turns TLS on, and the server's certificate and host name
//! are then always verified — against `sslrootcert=FILE` when the address
//! names one, else the system's roots; a certificate that does not verify
//! refuses the connection. Without `sslmode` (or with `disable`, `allow`,
//! `prefer`) the connection is plain. Errors never repeat the address:
//! it holds the password.

use std::sync::Arc;

use postgres::config::SslMode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::StoreError;

/// A parsed address: the driver's settings and, when on, its TLS.
pub struct Address {
    pub config: postgres::Config,
    pub tls: Option<MakeRustlsConnect>,
}

/// Reads `url` (`postgres://user:password@host:port/database?sslmode=require`).
pub fn parse(url: &str) -> Result<Address, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root) = (String::new(), None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8_lossy()
            .into_owned();
        match key {
            "sslmode" => mode = value,
            "sslrootcert" => root = Some(value),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: postgres::Config = rest
        .parse()
        .map_err(|e: postgres::Error| StoreError::Connect(format!("the address: {e}")))?;
    let tls = match mode.as_str() {
        "" | "disable" | "allow" | "prefer" => {
            config.ssl_mode(SslMode::Disable);
            None
        }
        "require" | "verify-ca" | "verify-full" => {
            config.ssl_mode(SslMode::Require);
            Some(MakeRustlsConnect::new(client_config(root.as_deref())?))
        }
        other => {
            return Err(StoreError::Connect(format!(
                "sslmode={other} is not known: use disable, require, verify-ca or verify-full"
            )));
        }
    };
    Ok(Address { config, tls })
}

/// TLS settings that trust the certificates of `root` (a PEM file), or
/// the system's roots.
fn client_config(root: Option<&str>) -> Result<rustls::ClientConfig, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| StoreError::Connect(format!("cannot read sslrootcert {path}: {e}")))?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    StoreError::Connect(format!("sslrootcert {path} holds a bad certificate: {e}"))
                })?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Connect(
            "sslmode asks for TLS but no trusted certificate was found: name the server's CA with sslrootcert=FILE".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Connect(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(url: &str) -> String {
        match parse(url) {
            Ok(_) => String::from("parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn without_sslmode_the_connection_is_plain() {
        for url in [
            "postgres://u:pw@db:5432/waflow",
            "postgres://u:pw@db/waflow?sslmode=prefer",
            "postgres://u:pw@db/waflow?application_name=waflow&sslmode=disable",
        ] {
            let address = parse(url).unwrap();
            assert!(address.tls.is_none(), "{url}");
            assert_eq!(address.config.get_dbname(), Some("waflow"));
        }
    }

    #[test]
    fn require_turns_tls_on_with_the_named_roots() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["db".into()]).unwrap();
        let path = dir.path().join("ca pem.crt");
        std::fs::write(&path, ca.cert.pem()).unwrap();
        let encoded = path.to_string_lossy().replace(' ', "%20");
        let url = format!("postgres://u:pw@db/waflow?sslmode=verify-full&sslrootcert={encoded}");
        let address = parse(&url).unwrap();
        assert!(address.tls.is_some());
        assert_eq!(address.config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn bad_settings_say_what_and_never_show_the_password() {
        let unknown = error("postgres://u:secretpw@db/waflow?sslmode=sometimes");
        assert!(
            unknown.contains("sslmode=sometimes is not known"),
            "{unknown}"
        );
        let missing =
            error("postgres://u:secretpw@db/w?sslmode=require&sslrootcert=/nonexistent.pem");
        assert!(
            missing.contains("cannot read sslrootcert /nonexistent.pem"),
            "{missing}"
        );
        for text in [unknown, missing, error("postgres://u:secretpw@db:port/w")] {
            assert!(!text.contains("secretpw"), "{text}");
        }
    }
}
