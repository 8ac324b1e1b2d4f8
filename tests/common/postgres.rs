//! A throwaway PostgreSQL server for the tests: the distribution's
//! `postgresql` package, a fresh cluster (`initdb`) in a temporary folder,
//! served on a free port, run as an unprivileged user when the tests run as
//! root (the server refuses root). One cluster per test binary, one new
//! database per test. The server is told to stop when the test process
//! ends (a parent-death signal, set by util-linux's `setpriv`), so a
//! failed or killed test run leaves no server behind; its folder is
//! removed by the next run.
//!
//! Without PostgreSQL installed, [`database`] returns `None` and the tests
//! that need it say so and pass, unless `WAFLOW_POSTGRES_TESTS=require`
//! (CI sets it): then they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The running cluster of this test process.
struct Cluster {
    port: u16,
    /// Its folder: `ca.pem` is the certificate its TLS certificate is signed by.
    dir: PathBuf,
}

/// The CA file of the tests' server, which also takes TLS connections
/// (`sslmode=require&sslrootcert=…`), or `None` without PostgreSQL.
pub fn ca_file() -> Option<PathBuf> {
    let cluster = CLUSTER.get_or_init(start).as_ref()?;
    Some(cluster.dir.join("ca.pem"))
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The address of a new, empty database, or `None` (with a note on stderr)
/// when PostgreSQL is not installed and not required.
pub fn database() -> Option<String> {
    // The synchronous client cannot run on a thread that runs async tests.
    std::thread::spawn(new_database)
        .join()
        .expect("create a test database")
}

fn new_database() -> Option<String> {
    let cluster = CLUSTER.get_or_init(start).as_ref()?;
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst)
    );
    let mut admin = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls)
        .expect("connect to the test cluster");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create a test database");
    Some(cluster.url(&name))
}

impl Cluster {
    fn url(&self, database: &str) -> String {
        format!("postgres://waflow@127.0.0.1:{}/{database}", self.port)
    }
}

fn required() -> bool {
    std::env::var("WAFLOW_POSTGRES_TESTS").as_deref() == Ok("require")
}

fn start() -> Option<Cluster> {
    let Some(bin) = bin_dir() else {
        assert!(
            !required(),
            "WAFLOW_POSTGRES_TESTS=require but PostgreSQL is not installed (apt-get install postgresql)"
        );
        eprintln!("PostgreSQL is not installed: the tests on PostgreSQL do not run");
        return None;
    };
    remove_old_clusters();
    // A test binary may hold this module more than once (`on_postgres`
    // compiles several test files, each with its own copy): one cluster
    // each, in folders of their own.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("waflow-pg-{}-{stamp}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the cluster's folder");
    let user = User::unprivileged();
    user.own(&dir);
    let data = dir.join("data");
    let status = user
        .command(&bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
        .args(["-U", "waflow", "--auth=trust", "--no-sync", "-E", "UTF8"])
        .stdout(Stdio::null())
        .status()
        .expect("run initdb");
    assert!(status.success(), "initdb failed");
    certificates(&dir, user);
    let port = super::free_port();
    serve(&bin, &data, &dir, port, user);
    let cluster = Cluster { port, dir };
    wait_until_ready(&cluster);
    Some(cluster)
}

/// Starts the server from a thread that lives as long as the process: the
/// parent-death signal goes with the thread that started the child.
fn serve(bin: &Path, data: &Path, dir: &Path, port: u16, user: User) {
    let mut command = user.command(Path::new("setpriv"));
    command
        .args(["--pdeathsig", "INT", "--"])
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-k")
        .arg(dir)
        // The tests' durability is waflow's, not the server's disk: a
        // cluster that is thrown away needs no fsync.
        .args([
            "-c",
            "fsync=off",
            "-c",
            "max_connections=300",
            "-c",
            "ssl=on",
        ])
        .arg(format!(
            "-cssl_cert_file={}",
            dir.join("server.crt").display()
        ))
        .arg(format!(
            "-cssl_key_file={}",
            dir.join("server.key").display()
        ))
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(dir.join("server.log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    std::thread::spawn(move || {
        let mut child = command.spawn().expect("start postgres");
        let _ = child.wait();
        // Keep the thread (and so the parent-death signal) until the process ends.
        loop {
            std::thread::park();
        }
    });
}

/// A CA (`ca.pem`) and the server's certificate for 127.0.0.1 signed by
/// it (`server.crt`, `server.key`: the server wants its key readable by
/// itself alone).
fn certificates(dir: &Path, user: User) {
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("the CA");
    let key = rcgen::KeyPair::generate().expect("a key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("params");
    let cert = params
        .signed_by(&key, &ca)
        .expect("the server's certificate");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
    std::fs::write(dir.join("server.crt"), cert.pem()).expect("write server.crt");
    let key_file = dir.join("server.key");
    std::fs::write(&key_file, key.serialize_pem()).expect("write server.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
        .expect("chmod server.key");
    user.own(&key_file);
}

fn wait_until_ready(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls) {
            Ok(_) => return,
            Err(e) if Instant::now() > deadline => panic!("the test cluster did not start: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The newest installed server's programs: Debian puts them under
/// `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("WAFLOW_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Folders of clusters whose test process is gone.
fn remove_old_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("waflow-pg-"))
            .and_then(|n| n.split('-').next());
        let Some(pid) = pid else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Who runs the server: the tests' own user, or, for root, the
/// `postgres` user the package made (or `nobody`).
#[derive(Clone, Copy)]
struct User {
    ids: Option<(u32, u32)>,
}

impl User {
    fn unprivileged() -> User {
        let me = Command::new("id").arg("-u").output().expect("run id");
        if String::from_utf8_lossy(&me.stdout).trim() != "0" {
            return User { ids: None };
        }
        let ids = ["postgres", "nobody"].iter().find_map(|name| {
            let id = |flag: &str| -> Option<u32> {
                let out = Command::new("id").args([flag, name]).output().ok()?;
                String::from_utf8_lossy(&out.stdout).trim().parse().ok()
            };
            Some((id("-u")?, id("-g")?))
        });
        User {
            ids: Some(ids.expect("no unprivileged user (postgres or nobody) to run the server")),
        }
    }

    fn own(&self, dir: &Path) {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid)).expect("chown the cluster folder");
        }
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command
    }
}
