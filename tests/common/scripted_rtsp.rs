//! A small RTSP server whose misbehaviour is scripted, for faults GStreamer's server cannot be made to
//! produce on demand: bytes that are not RTP after PLAY, RTP timestamps that jump backwards. It speaks
//! just enough RTSP/1.0 for a real client (retina): OPTIONS, DESCRIBE (an SDP with the clip's
//! parameter sets), SETUP with TCP interleaving, PLAY, GET_PARAMETER keep-alives and TEARDOWN, and
//! sends a real H.264 clip as RFC 6184 RTP (single NAL units and FU-A fragments) at the given rate,
//! looping.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use panoptes_engine::source::annexb::{access_units, kind, nal_units};

/// What the server does once playing.
#[derive(Clone, Copy, Debug)]
pub enum Script {
    /// Streams the clip, looping, on every connection.
    Clean,
    /// On the first connection only: `after` access units, then random bytes where RTP should be.
    GarbageAfter { after: usize },
    /// At access unit `at` of each loop of the clip (0 < `at` < its length) the RTP timestamp goes
    /// back by `secs` seconds, and carries on increasing from there.
    TimestampsBack { at: usize, secs: u32 },
}

pub struct ScriptedRtspServer {
    pub port: u16,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ScriptedRtspServer {
    pub fn start(clip: &Path, fps: u32, script: Script) -> ScriptedRtspServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the scripted RTSP server");
        let port = listener.local_addr().expect("local address").port();
        let units: Vec<Vec<u8>> =
            access_units(&std::fs::read(clip).expect("read the clip")).into_iter().map(|u| u.data).collect();
        assert!(!units.is_empty(), "no access units in {}", clip.display());
        let units = Arc::new(units);
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let n = c.fetch_add(1, Ordering::SeqCst);
                let (units, stop) = (units.clone(), s.clone());
                std::thread::spawn(move || serve(conn, n, units, fps, script, port, stop));
            }
        });
        ScriptedRtspServer { port, connections, stop }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam1", self.port)
    }
}

impl Drop for ScriptedRtspServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

const SESSION: &str = "5350414e4f505445";

/// One client connection: answer requests; on PLAY start streaming from a second thread.
fn serve(
    conn: TcpStream,
    index: usize,
    units: Arc<Vec<Vec<u8>>>,
    fps: u32,
    script: Script,
    port: u16,
    stop: Arc<AtomicBool>,
) {
    let Ok(read_half) = conn.try_clone() else { return };
    let writer = Arc::new(Mutex::new(conn));
    let mut reader = BufReader::new(read_half);
    let playing = Arc::new(AtomicBool::new(false));
    loop {
        // The client may interleave RTCP ('$' frames) with its requests.
        let mut first = [0u8; 1];
        if reader.read_exact(&mut first).is_err() {
            break;
        }
        if first[0] == b'$' {
            let mut header = [0u8; 3];
            if reader.read_exact(&mut header).is_err() {
                break;
            }
            let mut skip = vec![0u8; u16::from_be_bytes([header[1], header[2]]) as usize];
            if reader.read_exact(&mut skip).is_err() {
                break;
            }
            continue;
        }
        let mut head = vec![first[0]];
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => head.extend_from_slice(&line),
            }
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let body_len: usize = header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0u8; body_len];
        if reader.read_exact(&mut body).is_err() {
            break;
        }
        let cseq = header("CSeq").unwrap_or_else(|| "0".into());
        let method = head.split_whitespace().next().unwrap_or("").to_string();
        let base = format!("rtsp://127.0.0.1:{port}/cam1");
        let response = match method.as_str() {
            "OPTIONS" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n\r\n"
            ),
            "DESCRIBE" => {
                let sdp = sdp(&units[0]);
                format!(
                    "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Base: {base}/\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )
            }
            "SETUP" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0000CAFE\r\nSession: {SESSION};timeout=60\r\n\r\n"
            ),
            "PLAY" => format!(
                "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {SESSION}\r\nRange: npt=0.000-\r\nRTP-Info: url={base}/track1;seq=1;rtptime=0\r\n\r\n"
            ),
            "GET_PARAMETER" => format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nSession: {SESSION}\r\n\r\n"),
            "TEARDOWN" => {
                let _ = write_all(&writer, format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n\r\n").as_bytes());
                break;
            }
            _ => format!("RTSP/1.0 501 Not Implemented\r\nCSeq: {cseq}\r\n\r\n"),
        };
        if !write_all(&writer, response.as_bytes()) {
            break;
        }
        if method == "PLAY" && !playing.swap(true, Ordering::SeqCst) {
            let (w, u, p, s) = (writer.clone(), units.clone(), playing.clone(), stop.clone());
            std::thread::spawn(move || stream(w, u, fps, script, index, p, s));
        }
    }
    playing.store(false, Ordering::SeqCst);
}

fn write_all(writer: &Mutex<TcpStream>, bytes: &[u8]) -> bool {
    let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
    w.write_all(bytes).is_ok()
}

/// The SDP of one H.264 video stream, with the clip's SPS and PPS.
fn sdp(first_unit: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let nals = nal_units(first_unit);
    let sps = nals.iter().find(|n| kind(n) == 7).expect("the clip starts with an SPS");
    let pps = nals.iter().find(|n| kind(n) == 8).expect("the clip starts with a PPS");
    format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=scripted\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
         a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id={:02x}{:02x}{:02x};sprop-parameter-sets={},{}\r\n\
         a=control:track1\r\n",
        sps[1],
        sps[2],
        sps[3],
        b64.encode(sps),
        b64.encode(pps)
    )
}

/// RTP over the RTSP connection, channel 0, paced at `fps`, until the client goes or the server stops.
fn stream(
    writer: Arc<Mutex<TcpStream>>,
    units: Arc<Vec<Vec<u8>>>,
    fps: u32,
    script: Script,
    connection: usize,
    playing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let step = 90_000 / fps.max(1);
    let (mut seq, mut ts): (u16, u32) = (1, 0);
    let mut sent = 0usize;
    let mut seed = 0x2545_f491u32;
    while playing.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
        let unit = &units[sent % units.len()];
        match script {
            Script::GarbageAfter { after } if connection == 0 && sent == after => {
                // Not a '$' frame, not an RTSP message: what a broken camera firmware might send.
                let garbage: Vec<u8> = (0..2048)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        ((seed >> 24) as u8) | 0x80
                    })
                    .collect();
                let _ = write_all(&writer, &garbage);
                // Then silence: the connection stays open, as a wedged camera's would.
                while playing.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            Script::TimestampsBack { at, secs } if sent % units.len() == at => {
                ts = ts.wrapping_sub(secs * 90_000);
            }
            _ => {}
        }
        let nals = nal_units(unit);
        let last = nals.len().saturating_sub(1);
        for (i, nal) in nals.iter().enumerate() {
            for payload in fragments(nal) {
                let marker = i == last && payload.last_fragment;
                let mut packet = Vec::with_capacity(payload.bytes.len() + 16);
                packet.extend_from_slice(&[b'$', 0, 0, 0]);
                packet.extend_from_slice(&[0x80, 96 | if marker { 0x80 } else { 0 }]);
                packet.extend_from_slice(&seq.to_be_bytes());
                packet.extend_from_slice(&ts.to_be_bytes());
                packet.extend_from_slice(&0xCAFEu32.to_be_bytes());
                packet.extend_from_slice(&payload.bytes);
                let len = (packet.len() - 4) as u16;
                packet[2..4].copy_from_slice(&len.to_be_bytes());
                if !write_all(&writer, &packet) {
                    return;
                }
                seq = seq.wrapping_add(1);
            }
        }
        sent += 1;
        ts = ts.wrapping_add(step);
        std::thread::sleep(Duration::from_millis(1000 / fps.max(1) as u64));
    }
}

struct Fragment {
    bytes: Vec<u8>,
    last_fragment: bool,
}

/// RFC 6184: a NAL unit in one packet when it fits, else FU-A fragments.
fn fragments(nal: &[u8]) -> Vec<Fragment> {
    const MAX: usize = 1400;
    if nal.len() <= MAX {
        return vec![Fragment { bytes: nal.to_vec(), last_fragment: true }];
    }
    let (header, body) = (nal[0], &nal[1..]);
    let indicator = (header & 0xE0) | 28;
    let chunks: Vec<&[u8]> = body.chunks(MAX - 2).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let fu_header = (header & 0x1F) | if i == 0 { 0x80 } else { 0 } | if i == n - 1 { 0x40 } else { 0 };
            let mut bytes = vec![indicator, fu_header];
            bytes.extend_from_slice(chunk);
            Fragment { bytes, last_fragment: i == n - 1 }
        })
        .collect()
}
