//! The listener against slow and greedy clients: raw TCP connections to the
//! real binary that send headers or bodies too slowly, or too many at once.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A daemon with a 5 s read timeout (long enough for twenty connections to
/// open on a loaded machine before the first is cut) and at most 20 connections.
async fn daemon(api: &wiremock::MockServer) -> (Daemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), &api.uri(), port, "");
    let limits = "  max_body: 4KiB\n  read_timeout: 5s\n  max_connections: 20\n";
    edit_config(dir.path(), "  max_body: 4KiB\n", limits);
    (start_in(dir.path(), port).await, dir)
}

/// What the server sends on `stream` until it closes it (or 20 s pass).
async fn answer(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

async fn healthz(d: &Daemon) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    answer(&mut s).await
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_are_cut_and_connections_over_the_cap_get_503() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api).await;
    // Clients that never finish their headers (or never send a byte) take
    // every slot: twenty-one of them, and the one over the cap (or more, if
    // a probe of the start still holds a slot) gets 503 at once.
    let mut slow = Vec::new();
    for i in 0..21 {
        let mut s = TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"POST /webhook/x HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
        }
        slow.push(s);
    }
    let mut refused = 0;
    for s in &mut slow {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await;
        if let Ok(Ok(n)) = read
            && buf[..n].starts_with(b"HTTP/1.1 503")
        {
            refused += 1;
        }
    }
    assert!((1..=2).contains(&refused), "{refused} connections refused");
    // The read timeout cuts them; the slots are free again.
    for s in &mut slow {
        let cut = answer(s).await;
        assert!(!cut.contains("200 OK"), "{cut}");
    }
    // A slot is given back just after its socket closes: ask until answered.
    let mut ok = healthz(&d).await;
    for _ in 0..50 {
        if ok.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ok = healthz(&d).await;
    }
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let metrics = metrics_of(&d).await;
    assert!(
        metrics.contains("waflow_connections_refused_total "),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_comes_too_slowly_gets_408_and_nothing_is_recorded() {
    let api = api_ok().await;
    let (d, _dir) = daemon(&api).await;
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).await.unwrap();
    let head = format!(
        "POST /webhook/{SECRET} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"instance_id\""
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let got = answer(&mut s).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("read_timeout"), "{got}");
    // Still serving.
    assert_eq!(post(&d, &message("L1", "84933313000", "price?")).await, 200);
}
