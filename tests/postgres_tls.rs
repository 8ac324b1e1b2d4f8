//! The store on PostgreSQL over TLS (`sslmode=require`): the daemon serves
//! through an encrypted connection — the server says so — and a server
//! whose certificate does not verify is refused with a message that says
//! why, never with the address.

mod common;

use std::time::Duration;

use common::*;

/// `url` with TLS on, trusting the CA file `ca`.
fn with_tls(url: &str, ca: &std::path::Path) -> String {
    format!("{url}?sslmode=require&sslrootcert={}", ca.display())
}

/// How many of the server's connections to the database `name` are encrypted.
fn encrypted_connections(url: &str, name: &str) -> i64 {
    let (url, name) = (url.to_owned(), name.to_owned());
    std::thread::spawn(move || {
        let mut admin = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND s.ssl",
                &[&name],
            )
            .unwrap()
            .get(0)
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_serves_over_tls_when_the_address_asks_for_it() {
    let (Some(url), Some(ca)) = (common::postgres::database(), common::postgres::ca_file()) else {
        return;
    };
    let api = api_ok().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    let store = format!("store: \"{}\"", with_tls(&url, &ca));
    edit_config(dir.path(), "store: waflow.db", &store);
    let d = start_in(dir.path(), port).await;
    assert_eq!(
        post(&d, &message("TLS1", "84907700300", "price?")).await,
        200
    );
    assert_eq!(
        wait_for_sends(&api, "send", 1, Duration::from_secs(10))
            .await
            .len(),
        1,
        "{}",
        d.log()
    );
    let name = url.rsplit('/').next().unwrap();
    assert!(encrypted_connections(&url, name) >= 1, "{}", d.log());
}

#[test]
fn a_certificate_that_does_not_verify_is_refused_with_the_reason() {
    let (Some(url), Some(_)) = (common::postgres::database(), common::postgres::ca_file()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A CA that did not sign the server's certificate.
    let other = rcgen::generate_simple_self_signed(vec!["elsewhere".to_owned()]).unwrap();
    let ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, other.cert.pem()).unwrap();
    let with_password = url.replacen("waflow@", "waflow:hunter2@", 1);
    std::fs::write(
        dir.path().join("waflow.yaml"),
        format!("store: \"{}\"\n", with_tls(&with_password, &ca)),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_waflow"))
        .current_dir(dir.path())
        .args(["-c", "waflow.yaml", "status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("cannot connect to PostgreSQL"), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
