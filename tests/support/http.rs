//! A loopback HTTP server that logs what it is asked: the outside effect
//! the workflow tests count (an `http.get` a workflow makes is a charge).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A loopback HTTP server logging the path of every request, in order;
/// every answer is `paid PATH`.
pub fn logging_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let logged = Arc::clone(&log);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // A client killed before its request line was out sent nothing.
            let Some(path) = line.split(' ').nth(1).map(str::to_owned) else {
                continue;
            };
            // The rest of the head, up to the blank line.
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            logged.lock().unwrap().push(path.clone());
            let body = format!("paid {path}");
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, log)
}

/// How many requests `log` holds for each path.
pub fn counts(log: &Mutex<Vec<String>>) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for path in log.lock().unwrap().iter() {
        *counts.entry(path.clone()).or_insert(0) += 1;
    }
    counts
}
