//! Job logs: `GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs` answers `302 Found` with a
//! short-lived `Location` (blob storage); the log there is plain text, each line prefixed with an
//! RFC 3339 timestamp, with `##[group]`/`##[endgroup]`/`##[error]` markers.
//!
//! The error is at the end, so the client keeps the **tail**: it asks for the last
//! [`LogLimits::tail_bytes`] with a suffix `Range` (blob storage answers `206 Partial Content` and
//! sends only those bytes), and when the server ignores the range it streams the whole body through a
//! [`TailBuffer`] that holds at most `tail_bytes`, and stops reading after
//! [`LogLimits::max_read_bytes`]. Memory stays at about `tail_bytes` whatever the log's size.

use bytes::Bytes;
use http_body_util::BodyExt;

use super::error::{Error, Result};
use super::http::{Call, Transport};

/// Bounds of one log fetch, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Bytes kept from the end of the log. Default 4 MiB (triage scans at most 16 MiB; the excerpt is
    /// 64 KiB).
    pub tail_bytes: usize,
    /// Bytes read at most when the server sends the whole log; reading stops there. Default 256 MiB.
    pub max_read_bytes: u64,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self { tail_bytes: 4 << 20, max_read_bytes: 256 << 20 }
    }
}

/// The kept end of a log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogTail {
    /// The last bytes of the log, starting at a line boundary when the head was dropped.
    pub bytes: Vec<u8>,
    /// The log's size when the server said (`Content-Range`) or when it was read to the end.
    pub total_bytes: Option<u64>,
    /// Bytes before [`LogTail::bytes`] that were not kept.
    pub dropped_bytes: u64,
    /// The server sent more than `max_read_bytes` and reading stopped: the tail is the end of what
    /// was read, not of the log.
    pub stopped_early: bool,
}

/// Keeps the last `cap` bytes of everything pushed into it, in a ring of `cap` bytes.
#[derive(Debug)]
pub struct TailBuffer {
    ring: Vec<u8>,
    cap: usize,
    /// Next write position once the ring is full.
    pos: usize,
    total: u64,
}

impl TailBuffer {
    /// A buffer that keeps at most `cap` bytes (at least 1).
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self { ring: Vec::with_capacity(cap.min(1 << 20)), cap, pos: 0, total: 0 }
    }

    /// Append a chunk, dropping the oldest bytes past the cap.
    pub fn push(&mut self, mut chunk: &[u8]) {
        self.total += chunk.len() as u64;
        if chunk.len() >= self.cap {
            chunk = &chunk[chunk.len() - self.cap..];
            self.ring.clear();
            self.ring.extend_from_slice(chunk);
            self.pos = 0;
            return;
        }
        if self.ring.len() < self.cap {
            let room = self.cap - self.ring.len();
            let (now, rest) = chunk.split_at(room.min(chunk.len()));
            self.ring.extend_from_slice(now);
            chunk = rest;
            if chunk.is_empty() {
                return;
            }
        }
        // Full: overwrite from `pos`, wrapping.
        let first = (self.cap - self.pos).min(chunk.len());
        self.ring[self.pos..self.pos + first].copy_from_slice(&chunk[..first]);
        let rest = &chunk[first..];
        self.ring[..rest.len()].copy_from_slice(rest);
        self.pos = (self.pos + chunk.len()) % self.cap;
    }

    /// Bytes pushed so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept bytes in order, cut to start after the first newline when older bytes were dropped
    /// (so the tail never starts mid-line).
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        if self.ring.len() == self.cap {
            self.ring.rotate_left(self.pos);
        }
        let mut dropped = self.total - self.ring.len() as u64;
        if dropped > 0
            && let Some(nl) = memchr::memchr(b'\n', &self.ring)
        {
            self.ring.drain(..=nl);
            dropped += nl as u64 + 1;
        }
        (self.ring, dropped)
    }
}

/// Parse `Content-Range: bytes a-b/total` into `total`.
fn content_range_total(v: &str) -> Option<u64> {
    v.trim().strip_prefix("bytes")?.trim().split('/').nth(1)?.trim().parse().ok()
}

/// Fetch the tail of job `job_id`'s log. Errors: [`Error::Gone`] when the log expired (410),
/// [`Error::NotFound`], rate limits and transport failures as every call.
pub async fn fetch_job_log(
    transport: &Transport,
    owner: &str,
    repo: &str,
    job_id: i64,
    limits: LogLimits,
) -> Result<LogTail> {
    let path = format!("/repos/{owner}/{repo}/actions/jobs/{job_id}/logs");
    let call = Call::get("actions/download-job-logs-for-workflow-run", path.clone())
        .header(http::header::RANGE, format!("bytes=-{}", limits.tail_bytes));
    let resp = match transport.stream(&call).await {
        Err(Error::NotFound { status: 410, path }) => return Err(Error::Gone { path }),
        other => other?,
    };
    let partial = resp.status() == http::StatusCode::PARTIAL_CONTENT;
    let range_total =
        resp.headers().get(http::header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(content_range_total);
    let mut body = resp.into_body();
    let mut tail = TailBuffer::new(limits.tail_bytes);
    let mut stopped_early = false;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Transport {
                method: "GET".into(),
                path: path.clone(),
                message: e.to_string().lines().next().unwrap_or("").to_string(),
            })?;
            if let Ok(data) = frame.into_data() {
                let data: Bytes = data;
                let room = limits.max_read_bytes.saturating_sub(tail.total());
                if (data.len() as u64) > room {
                    tail.push(&data[..room as usize]);
                    stopped_early = true;
                    break;
                }
                tail.push(&data);
            }
        }
        Ok::<_, Error>(())
    };
    // Logs are large: the deadline is four times a normal call's.
    match tokio::time::timeout(transport.limits().request_timeout * 4, read).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(Error::Transport {
                method: "GET".into(),
                path,
                message: "the log did not arrive within the deadline".into(),
            });
        }
    }
    let read_total = tail.total();
    let (mut bytes, mut dropped) = tail.finish();
    let total_bytes = match (partial, range_total) {
        (true, t) => {
            // A suffix range starts wherever the byte count fell: start at the next line.
            if t.is_none_or(|t| t > bytes.len() as u64)
                && let Some(nl) = memchr::memchr(b'\n', &bytes)
            {
                bytes.drain(..=nl);
            }
            if let Some(t) = t {
                dropped = t.saturating_sub(bytes.len() as u64);
            }
            t
        }
        (false, _) if !stopped_early => Some(read_total),
        _ => None,
    };
    Ok(LogTail { bytes, total_bytes, dropped_bytes: dropped, stopped_early })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cap: usize, chunks: &[&[u8]]) -> (Vec<u8>, u64) {
        let mut t = TailBuffer::new(cap);
        for c in chunks {
            t.push(c);
        }
        t.finish()
    }

    #[test]
    fn keeps_the_tail_from_a_line_start() {
        assert_eq!(run(100, &[b"a\nb\n", b"c\n"]), (b"a\nb\nc\n".to_vec(), 0), "under the cap: everything");
        // 10-byte ring over 14 bytes: keeps "x\nline3\nend" minus the partial first line.
        let (kept, dropped) = run(10, &[b"line1\nline2\n", b"line3\nend"]);
        assert_eq!(String::from_utf8(kept.clone()).unwrap(), "line3\nend");
        assert_eq!(dropped as usize + kept.len(), 21);
        // A chunk larger than the ring, then small chunks wrapping around.
        let (kept, _) = run(8, &[b"0123456789abcdef", b"\nxy", b"z\n12"]);
        assert_eq!(kept, b"xyz\n12");
    }

    #[test]
    fn tail_matches_a_plain_suffix_for_every_split() {
        let log: Vec<u8> = (0..2000).flat_map(|i| format!("2024-01-01T00:00:00.0Z line {i}\n").into_bytes()).collect();
        for cap in [1, 7, 64, 1000, 5000, 100_000] {
            for step in [1, 3, 17, 256, 4096] {
                let mut t = TailBuffer::new(cap);
                for c in log.chunks(step) {
                    t.push(c);
                }
                let (kept, dropped) = t.finish();
                assert!(kept.len() <= cap, "cap {cap}");
                assert_eq!(&log[dropped as usize..], &kept[..], "cap {cap} step {step}");
                if dropped > 0 {
                    assert_eq!(log[dropped as usize - 1], b'\n', "starts at a line");
                }
            }
        }
    }

    #[test]
    fn content_range() {
        assert_eq!(content_range_total("bytes 100-199/200"), Some(200));
        assert_eq!(content_range_total("bytes 0-0/*"), None);
    }
}
