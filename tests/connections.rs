//! Connection hygiene of the real daemon under hostile clients: a descriptor limit far below
//! the number of clients, 1,000 silent connections, 200 slowloris connections that drip header
//! lines, and an idle keep-alive connection. `/healthz` must keep answering, and the daemon must
//! close what it cannot serve instead of spinning on `accept`.

#[path = "support/helpers.rs"]
mod helpers;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const SILENT: usize = 1000;
const SLOWLORIS: usize = 200;

/// Whether the daemon has closed `s` (a read sees end-of-file or a reset, not a timeout).
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before the close
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn healthz_answers_through_idle_and_slowloris_floods_at_a_small_descriptor_limit() {
    // this process holds ~1,250 sockets: its soft limit is raised to the hard one, as the daemon's
    let own = cistrack::server::conns::open_file_limit().expect("getrlimit works on Linux");
    assert!(
        own >= (SILENT + SLOWLORIS + 100) as u64,
        "the test needs {} descriptors; the hard limit is {own}",
        SILENT + SLOWLORIS + 100
    );
    // the daemon gets 256 descriptors, soft and hard: it cannot raise them
    let mut command = std::process::Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -n 256 && exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_cistrack"),
        ])
        .args(helpers::FIXTURE_SERVE)
        .args(["--header-timeout", "2", "--idle-timeout", "2"]);
    let daemon = helpers::Daemon::start(command);
    let addr = daemon.addr;
    assert!(
        daemon
            .log()
            .contains("--max-connections 1024 lowered to 192"),
        "the cap follows the descriptor limit:\n{}",
        daemon.log()
    );

    // an idle keep-alive connection after one complete request
    let mut keep_alive = TcpStream::connect(addr).unwrap();
    write!(
        keep_alive,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    keep_alive.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    let silent: Vec<TcpStream> = (0..SILENT)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok())
        .collect();
    assert!(
        silent.len() > SILENT * 9 / 10,
        "{} of {SILENT} connected",
        silent.len()
    );
    let slow: Vec<TcpStream> = (0..SLOWLORIS)
        .filter_map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .ok()?;
            Some(s)
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let drip = std::thread::spawn({
        let stop = stop.clone();
        let mut slow: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
        move || {
            while !stop.load(Ordering::SeqCst) {
                for s in &mut slow {
                    let _ = s.write_all(b"X-Drip: y\r\n");
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    });

    // probes while the floods are on: every one is answered
    for i in 0..10 {
        let answer = helpers::http_get(addr, "/healthz", Duration::from_secs(20));
        let (status, text) = answer.unwrap_or_else(|| {
            panic!(
                "probe {i}: /healthz did not answer under the flood\n{}",
                daemon.log()
            )
        });
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("\"connections\":{\"max\":192"), "{text}");
    }

    // past the header and idle timeouts every silent, slow and idle connection is closed
    std::thread::sleep(Duration::from_secs(5));
    let mut silent = silent;
    let open_silent = silent.iter_mut().map(closed_by_peer).filter(|c| !c).count();
    let mut slow = slow;
    let open_slow = slow.iter_mut().map(closed_by_peer).filter(|c| !c).count();
    stop.store(true, Ordering::SeqCst);
    drip.join().unwrap();
    assert_eq!(open_silent, 0, "silent connections still open");
    assert_eq!(open_slow, 0, "slowloris connections still open");
    assert!(
        closed_by_peer(&mut keep_alive),
        "idle keep-alive still open"
    );

    let (status, metrics) = helpers::http_get(addr, "/metrics", Duration::from_secs(20)).unwrap();
    assert_eq!(status, 200);
    let value = |needle: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{needle} not in\n{metrics}"))
    };
    assert!(value("cistrack_connections_closed_total{reason=\"evicted\"}") > 0.0);
    // the /metrics connection itself is the only one left (or none, if already counted out)
    assert!(value("cistrack_connections_open") <= 2.0, "{metrics}");

    // the descriptor limit was hit without a busy loop: the warning is rate-limited
    let (status, log) = daemon.stop();
    let warnings = log.matches("accept failed").count();
    assert!(warnings <= 5, "{warnings} accept warnings:\n{log}");
    assert!(status.success(), "{status:?}\n{log}");
}
