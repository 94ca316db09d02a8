//! pop3-rate: POP3S (or IMAPS) sessions per second with a cheap client (tokio +
//! rustls/aws-lc-rs).
//!
//! One POP3 session = TCP connect -> full TLS handshake (no resumption: session cache off, new
//! ClientConnection each time) -> +OK greeting -> USER/PASS (or pipelined) -> STAT -> RETR 1
//! (read to "\r\n.\r\n") -> QUIT -> close. With --protocol imap, one session is what
//! /work/shared/bench/peers/imap_load.py --mode session does: connect -> TLS -> greeting ->
//! LOGIN -> SELECT INBOX -> LOGOUT -> close. With --protocol imap --mode mix, each of --conns
//! connections logs in once, SELECTs INBOX and loops over imap_load.py's mix (same weights and
//! commands: UID FETCH meta 30, UID FETCH BODY.PEEK[] 20, UID STORE +/-FLAGS.SILENT 15, UID
//! SEARCH 15, NOOP 10, UID FETCH range 10), one command in flight per connection; it prints
//! operations instead of sessions. --conns workers loop for --duration seconds; worker
//! w owns users w+1, w+1+W, ... (--user may contain "{n}"), so no two sessions of one maildrop
//! overlap. Prints one JSON line like bench/pop3_rate.py.
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self, _: &[u8], _: &CertificateDer<'_>, _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[derive(Clone)]
struct Args {
    host: String,
    port: u16,
    user: String,
    pass: String,
    users: usize,
    conns: usize,
    duration: f64,
    label: String,
    servername: String,
    pipeline: bool,
    imap: bool,
    mix: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 10995,
        user: "user{n}@bench.test".into(),
        pass: "benchpass".into(),
        users: 100,
        conns: 16,
        duration: 10.0,
        label: String::new(),
        servername: "mail.bench.test".into(),
        pipeline: false,
        imap: false,
        mix: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--pipeline" {
            a.pipeline = true;
            continue;
        }
        let v = it.next().unwrap_or_else(|| die(&format!("{k} needs a value")));
        match k.as_str() {
            "--host" => a.host = v.clone(),
            "--port" => a.port = v.parse().unwrap_or_else(|_| die(&format!("bad value for {k}: {v}"))),
            "--user" => a.user = v.clone(),
            "--pass" => a.pass = v.clone(),
            "--users" => a.users = v.parse().unwrap_or_else(|_| die(&format!("bad value for {k}: {v}"))),
            "--conns" => a.conns = v.parse().unwrap_or_else(|_| die(&format!("bad value for {k}: {v}"))),
            "--duration" => a.duration = v.parse().unwrap_or_else(|_| die(&format!("bad value for {k}: {v}"))),
            "--label" => a.label = v.clone(),
            "--servername" => a.servername = v.clone(),
            "--mode" => match v.as_str() {
                "session" => a.mix = false,
                "mix" => a.mix = true,
                _ => die("--mode is session or mix"),
            },
            "--protocol" => match v.as_str() {
                "pop3" => a.imap = false,
                "imap" => a.imap = true,
                _ => die("--protocol is pop3 or imap"),
            },
            _ => die(&format!(
                "unknown option {k}; options: --host --port --user --pass --users --conns \
                 --duration --label --servername --protocol pop3|imap --mode session|mix --pipeline"
            )),
        }
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("pop3-rate: {msg}");
    std::process::exit(2)
}

/// Reads until `buf` holds a full line; returns it (without consuming more than the line).
async fn line<S: AsyncReadExt + Unpin>(s: &mut S, buf: &mut Vec<u8>, what: &str) -> Result<Vec<u8>, String> {
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = buf.drain(..=i).collect();
            if !l.starts_with(b"+OK") {
                return Err(format!("{what}: {}", String::from_utf8_lossy(&l[..l.len().min(80)])));
            }
            return Ok(l);
        }
        fill(s, buf).await?;
    }
}

async fn fill<S: AsyncReadExt + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut tmp = [0u8; 16384];
    let n = s.read(&mut tmp).await.map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("closed".into());
    }
    buf.extend_from_slice(&tmp[..n]);
    Ok(())
}

/// Reads lines until the tagged completion of `tag`; it must be OK.
async fn tagged<S: AsyncReadExt + Unpin>(s: &mut S, buf: &mut Vec<u8>, tag: &[u8]) -> Result<(), String> {
    loop {
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = buf.drain(..=i).collect();
            if l.starts_with(tag) && l.get(tag.len()) == Some(&b' ') {
                if l[tag.len() + 1..].starts_with(b"OK") {
                    return Ok(());
                }
                return Err(String::from_utf8_lossy(&l[..l.len().min(80)]).into_owned());
            }
        }
        fill(s, buf).await?;
    }
}

/// Reads one response line, with the octets of any literal it announces (`{n}` at its end).
async fn imap_line<S: AsyncReadExt + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    loop {
        let Some(i) = buf.iter().position(|&b| b == b'\n') else {
            fill(s, buf).await?;
            continue;
        };
        let part: Vec<u8> = buf.drain(..=i).collect();
        line.extend_from_slice(&part);
        let literal = part
            .strip_suffix(b"}\r\n")
            .and_then(|p| p.iter().rposition(|&b| b == b'{').map(|o| &p[o + 1..]))
            .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok());
        let Some(mut n) = literal else {
            return Ok(line);
        };
        while n > 0 {
            if buf.is_empty() {
                fill(s, buf).await?;
            }
            let take = n.min(buf.len());
            buf.drain(..take);
            n -= take;
        }
    }
}

/// Sends one command and reads to its tagged completion, which must be OK; returns the
/// untagged lines.
async fn imap_cmd<S: AsyncReadExt + AsyncWriteExt + Unpin>(
    s: &mut S, buf: &mut Vec<u8>, tag: &str, command: &str,
) -> Result<Vec<Vec<u8>>, String> {
    s.write_all(format!("{tag} {command}\r\n").as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    let mut untagged = Vec::new();
    loop {
        let line = imap_line(s, buf).await?;
        if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
            if line[tag.len() + 1..].starts_with(b"OK") {
                return Ok(untagged);
            }
            return Err(format!("{command}: {}", String::from_utf8_lossy(&line[..line.len().min(120)])));
        }
        untagged.push(line);
    }
}

/// xorshift64*: a seeded, dependency-free generator for the command mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// imap_load.py's MIX: (name, weight).
const MIX: [(&str, usize); 6] = [
    ("FETCH_META", 30), ("FETCH_BODY", 20), ("STORE", 15), ("SEARCH", 15), ("NOOP", 10), ("FETCH_RANGE", 10),
];

/// One mix connection until `stop`: returns the latency of each operation finished in time.
async fn imap_mix(a: &Args, tls: &TlsConnector, user: &str, seed: u64, stop: Instant) -> Result<Vec<f64>, String> {
    let tcp = TcpStream::connect((a.host.as_str(), a.port)).await.map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(a.servername.clone()).map_err(|e| e.to_string())?;
    let mut s = tls.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
    let mut buf = Vec::with_capacity(65536);
    imap_line(&mut s, &mut buf).await?;
    imap_cmd(&mut s, &mut buf, "l", &format!("LOGIN \"{user}\" \"{}\"", a.pass)).await?;
    imap_cmd(&mut s, &mut buf, "s", "SELECT INBOX").await?;
    let uids: Vec<u64> = imap_cmd(&mut s, &mut buf, "u", "UID SEARCH ALL").await?
        .iter()
        .filter(|l| l.starts_with(b"* SEARCH"))
        .flat_map(|l| String::from_utf8_lossy(l).split_whitespace().skip(2).filter_map(|x| x.parse().ok()).collect::<Vec<u64>>())
        .collect();
    if uids.is_empty() {
        return Err(format!("{user}: empty mailbox (prefill first)"));
    }
    let names: Vec<&str> = MIX.iter().flat_map(|(n, w)| std::iter::repeat(*n).take(*w)).collect();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut lat = Vec::new();
    let mut n = 0u64;
    while Instant::now() < stop {
        let op = names[rng.below(names.len())];
        let u = uids[rng.below(uids.len())];
        let command = match op {
            "FETCH_META" => format!("UID FETCH {u} (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)"),
            "FETCH_BODY" => format!("UID FETCH {u} (BODY.PEEK[])"),
            "FETCH_RANGE" => {
                let lo = uids[rng.below(uids.len())];
                format!("UID FETCH {lo}:{} (UID FLAGS)", lo + 20)
            }
            "STORE" => format!("UID STORE {u} {}FLAGS.SILENT (\\Flagged)", if rng.below(2) == 0 { "+" } else { "-" }),
            "SEARCH" => ["UID SEARCH FLAGGED", "UID SEARCH UNSEEN", "UID SEARCH SUBJECT \"prefill 1\""][rng.below(3)].to_string(),
            _ => "NOOP".to_string(),
        };
        n += 1;
        let t = Instant::now();
        imap_cmd(&mut s, &mut buf, &format!("m{n}"), &command).await?;
        if Instant::now() <= stop {
            lat.push(t.elapsed().as_secs_f64());
        }
    }
    let _ = imap_cmd(&mut s, &mut buf, "z", "LOGOUT").await;
    Ok(lat)
}

async fn imap_session(a: &Args, tls: &TlsConnector, user: &str) -> Result<(), String> {
    let tcp = TcpStream::connect((a.host.as_str(), a.port)).await.map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(a.servername.clone()).map_err(|e| e.to_string())?;
    let mut s = tls.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
    let mut buf = Vec::with_capacity(8192);
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            if !buf.starts_with(b"* OK") {
                return Err(format!("greeting: {}", String::from_utf8_lossy(&buf[..i])));
            }
            buf.drain(..=i);
            break;
        }
        fill(&mut s, &mut buf).await?;
    }
    let cmds: [(&[u8], String); 3] = [
        (b"a", format!("a LOGIN \"{user}\" \"{}\"\r\n", a.pass)),
        (b"b", "b SELECT INBOX\r\n".into()),
        (b"c", "c LOGOUT\r\n".into()),
    ];
    for (tag, c) in &cmds {
        s.write_all(c.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        tagged(&mut s, &mut buf, tag).await?;
    }
    let _ = s.shutdown().await;
    Ok(())
}

async fn session(a: &Args, tls: &TlsConnector, user: &str) -> Result<(), String> {
    if a.imap {
        return imap_session(a, tls, user).await;
    }
    let tcp = TcpStream::connect((a.host.as_str(), a.port)).await.map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let name = ServerName::try_from(a.servername.clone()).map_err(|e| e.to_string())?;
    let mut s = tls.connect(name, tcp).await.map_err(|e| format!("tls: {e}"))?;
    let mut buf = Vec::with_capacity(8192);
    line(&mut s, &mut buf, "greeting").await?;
    let cmds = [format!("USER {user}\r\n"), format!("PASS {}\r\n", a.pass), "STAT\r\n".into(),
        "RETR 1\r\n".into(), "QUIT\r\n".into()];
    if a.pipeline {
        s.write_all(cmds.concat().as_bytes()).await.map_err(|e| format!("write: {e}"))?;
    }
    for c in &cmds {
        if !a.pipeline {
            s.write_all(c.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        }
        let what = c.split_whitespace().next().unwrap_or("");
        let reply = line(&mut s, &mut buf, what).await?;
        if what == "STAT" {
            let n: u64 = String::from_utf8_lossy(&reply).split_whitespace().nth(1)
                .and_then(|x| x.parse().ok()).unwrap_or(0);
            if n == 0 {
                return Err("empty maildrop".into());
            }
        } else if what == "RETR" {
            // Body: up to and including the terminating ".\r\n" line.
            loop {
                if buf.starts_with(b".\r\n") {
                    buf.drain(..3);
                    break;
                }
                if let Some(i) = buf.windows(5).position(|w| w == b"\r\n.\r\n") {
                    buf.drain(..i + 5);
                    break;
                }
                fill(&mut s, &mut buf).await?;
            }
        }
    }
    let _ = s.shutdown().await;
    Ok(())
}

fn cpu_secs() -> f64 {
    // utime + stime of this process, from /proc/self/stat (clock ticks, 100 Hz on Linux).
    let st = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = st.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn esc(s: &str) -> String {
    s.chars().flat_map(|c| match c {
        '"' => "\\\"".chars().collect::<Vec<_>>(),
        '\\' => "\\\\".chars().collect(),
        c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32).chars().collect(),
        c => vec![c],
    }).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = parse_args();
    if !(a.host.starts_with("127.") || a.host == "::1" || a.host == "localhost") {
        die("refusing non-loopback target");
    }
    if a.conns == 0 || a.conns > a.users {
        die("--conns must be between 1 and --users");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    cfg.resumption = rustls::client::Resumption::disabled();
    let tls = TlsConnector::from(Arc::new(cfg));

    let t0 = Instant::now();
    let stop = t0 + Duration::from_secs_f64(a.duration);
    let cpu0 = cpu_secs();
    let mut tasks = Vec::new();
    for w in 0..a.conns {
        let (a, tls) = (a.clone(), tls.clone());
        if a.imap && a.mix {
            // imap_load.py's user choice: connection w is user (w mod users) + 1.
            tasks.push(tokio::spawn(async move {
                let user = a.user.replace("{n}", &((w % a.users) + 1).to_string());
                match imap_mix(&a, &tls, &user, w as u64 + 1, stop).await {
                    Ok(lat) => (lat, Vec::new()),
                    Err(e) => (Vec::new(), vec![e]),
                }
            }));
            continue;
        }
        tasks.push(tokio::spawn(async move {
            let users: Vec<String> = (w + 1..=a.users).step_by(a.conns)
                .map(|n| a.user.replace("{n}", &n.to_string())).collect();
            let (mut lat, mut errs, mut turn) = (Vec::new(), Vec::new(), 0usize);
            while Instant::now() < stop {
                let user = &users[turn % users.len()];
                turn += 1;
                let t = Instant::now();
                match tokio::time::timeout(Duration::from_secs(15), session(&a, &tls, user)).await {
                    Ok(Ok(())) if Instant::now() <= stop => lat.push(t.elapsed().as_secs_f64()),
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => errs.push(e),
                    Err(_) => errs.push("timeout: no answer within 15 s".into()),
                }
            }
            (lat, errs)
        }));
    }
    let (mut lat, mut errs) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, e) = t.await.expect("worker panicked");
        lat.extend(l);
        errs.extend(e);
    }
    let cpu = cpu_secs() - cpu0;
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let n = lat.len();
    let samples: Vec<String> = errs.iter().take(3).map(|e| format!("\"{}\"", esc(&e[..e.len().min(200)]))).collect();
    let lat_ms = if n > 0 {
        format!("{{\"50\": {:.2}, \"90\": {:.2}, \"99\": {:.2}}}",
            pct(&lat, 50.0) * 1e3, pct(&lat, 90.0) * 1e3, pct(&lat, 99.0) * 1e3)
    } else {
        "null".into()
    };
    let cpu_ms = if n > 0 { format!("{:.3}", cpu * 1e3 / n as f64) } else { "null".into() };
    if a.imap && a.mix {
        println!(
            "{{\"label\": \"{}\", \"client\": \"rust\", \"protocol\": \"imap\", \"mode\": \"mix\", \"host\": \"{}\", \
             \"port\": {}, \"conns\": {}, \"duration_s\": {}, \"ops\": {}, \"ops_per_s\": {:.1}, \"errors\": {}, \
             \"error_samples\": [{}], \"client_cpu_ms_per_op\": {}, \"lat_ms\": {}}}",
            esc(&a.label), esc(&a.host), a.port, a.conns, a.duration, n, n as f64 / a.duration, errs.len(),
            samples.join(", "), cpu_ms, lat_ms
        );
        std::process::exit(if n > 0 && errs.is_empty() { 0 } else { 1 });
    }
    println!(
        "{{\"label\": \"{}\", \"client\": \"rust\", \"protocol\": \"{}\", \"host\": \"{}\", \"port\": {}, \"auth\": \"user\", \
         \"pipeline\": {}, \"resume\": false, \"users\": {}, \"conns\": {}, \"duration_s\": {}, \
         \"sessions\": {}, \"sessions_per_s\": {:.1}, \"errors\": {}, \"error_samples\": [{}], \
         \"client_cpu_ms_per_session\": {}, \"lat_ms\": {}}}",
        esc(&a.label), if a.imap { "imap" } else { "pop3" }, esc(&a.host), a.port, a.pipeline, a.users, a.conns, a.duration, n,
        n as f64 / a.duration, errs.len(), samples.join(", "), cpu_ms, lat_ms
    );
    std::process::exit(if n > 0 && errs.is_empty() { 0 } else { 1 });
}
