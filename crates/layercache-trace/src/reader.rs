//! The streaming trace reader.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{RecordUnit, TraceError};
use crate::format::{Compression, Format};
use crate::Request;

/// Size of the buffer between the (decompressed) file and the parsers.
const BUF_CAPACITY: usize = 64 * 1024;
/// Longest accepted text line; longer lines are malformed (this also stops a
/// binary file read as text from being buffered whole).
const MAX_LINE: usize = 64 * 1024;

/// Opens `path`, decompressing transparently by extension (see [`Compression`]).
pub(crate) fn open_decompressed(path: &Path) -> Result<Box<dyn BufRead + Send>, TraceError> {
    let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let inner: Box<dyn Read + Send> = match Compression::from_path(path) {
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(|e| TraceError::io(path, e))?)
        }
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(file)),
        Compression::None => Box::new(file),
    };
    Ok(Box::new(BufReader::with_capacity(BUF_CAPACITY, inner)))
}

/// Reads the next text line of `$r` as `Option<&str>` (`None` at the end of
/// the file), returning early on an error. A macro rather than a method so the
/// line borrows only the buffer field.
macro_rules! next_line {
    ($r:expr) => {{
        if $r.read_line()? {
            match std::str::from_utf8(&$r.buf) {
                Ok(s) => Some(s),
                Err(_) => return Err($r.malformed("line is not valid UTF-8")),
            }
        } else {
            None
        }
    }};
}

/// Streams the requests of one trace file.
///
/// An `Iterator<Item = Result<Request, TraceError>>`: it reads through a
/// buffer and never holds more than one line or record of the file. After
/// the first error it yields `None` (it is fused).
///
/// ```no_run
/// use std::path::Path;
/// use layercache_trace::TraceReader;
/// let reader = TraceReader::open(Path::new("traces/arc/OLTP.lis.zst"), None)?;
/// let mut n = 0u64;
/// for request in reader {
///     let request = request?;
///     n += u64::from(request.size);
/// }
/// # Ok::<(), layercache_trace::TraceError>(())
/// ```
pub struct TraceReader {
    path: PathBuf,
    format: Format,
    input: Box<dyn BufRead + Send>,
    /// The current line, or the current binary record.
    buf: Vec<u8>,
    /// The number of lines or binary records consumed so far.
    position: u64,
    /// ARC: the next key and how many keys of the current line remain.
    pending: Option<(u64, u64)>,
    /// CSV: `(size column, lbn column, field count)` once known.
    csv_columns: Option<(usize, usize, usize)>,
    done: bool,
}

impl std::fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("position", &self.position)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Opens a trace. With `format: None` the format is inferred by
    /// [`Format::detect`] (file name, then content sniffing for `.csv` and
    /// ambiguous `.trace` files); an undetectable format is
    /// [`TraceError::UnknownFormat`].
    pub fn open(path: &Path, format: Option<Format>) -> Result<TraceReader, TraceError> {
        let format = match format {
            Some(f) => f,
            None => Format::detect(path)?,
        };
        Ok(TraceReader {
            path: path.to_path_buf(),
            format,
            input: open_decompressed(path)?,
            buf: Vec::new(),
            position: 0,
            pending: None,
            csv_columns: None,
            done: false,
        })
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn malformed(&self, reason: impl Into<String>) -> TraceError {
        let unit = if self.format.is_binary() {
            RecordUnit::Record
        } else {
            RecordUnit::Line
        };
        TraceError::malformed(&self.path, unit, self.position, reason.into())
    }

    /// Reads the next line into `self.buf` without its `\n` / `\r\n`.
    /// Returns `Ok(false)` at the end of the file.
    fn read_line(&mut self) -> Result<bool, TraceError> {
        self.buf.clear();
        let mut read_any = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(TraceError::io(&self.path, e)),
            };
            if available.is_empty() {
                if !read_any {
                    return Ok(false);
                }
                break;
            }
            read_any = true;
            let (chunk, used, end) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if self.buf.len() + chunk.len() > MAX_LINE {
                self.position += 1;
                return Err(self.malformed(format!("line longer than {MAX_LINE} bytes")));
            }
            self.buf.extend_from_slice(chunk);
            self.input.consume(used);
            if end {
                break;
            }
        }
        self.position += 1;
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(true)
    }

    /// Reads one binary record of `len` bytes into `self.buf`. Returns
    /// `Ok(false)` at a clean end of file; a partial record is malformed.
    fn read_record(&mut self, len: usize) -> Result<bool, TraceError> {
        self.buf.resize(len, 0);
        let mut filled = 0;
        while filled < len {
            match self.input.read(&mut self.buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TraceError::io(&self.path, e)),
            }
        }
        if filled == 0 {
            return Ok(false);
        }
        self.position += 1;
        if filled < len {
            return Err(self.malformed(format!(
                "truncated record: expected {len} bytes, found {filled} before the end of the file"
            )));
        }
        Ok(true)
    }

    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        match self.format {
            Format::Arc => self.next_arc(),
            Format::Lirs => self.next_lirs(),
            Format::Cache2k => {
                if !self.read_record(4)? {
                    return Ok(None);
                }
                let v = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                Ok(Some(Request {
                    key: u64::from(v as u32),
                    size: 1,
                }))
            }
            Format::OracleGeneral => {
                if !self.read_record(24)? {
                    return Ok(None);
                }
                let b = &self.buf;
                let key = u64::from_le_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
                let size = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
                Ok(Some(Request { key, size }))
            }
            Format::LibCacheSimCsv => self.next_csv(),
            Format::TwitterCsv => self.next_twitter(),
        }
    }

    fn next_arc(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            if let Some((key, remaining)) = self.pending {
                self.pending = if remaining > 1 {
                    Some((key + 1, remaining - 1))
                } else {
                    None
                };
                return Ok(Some(Request { key, size: 1 }));
            }
            let Some(line) = next_line!(self) else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = [""; 4];
            let mut count = 0;
            for f in line.split_ascii_whitespace() {
                if count < 4 {
                    fields[count] = f;
                }
                count += 1;
            }
            if count != 4 {
                return Err(self.malformed(format!("expected 4 fields, found {count}")));
            }
            let parsed: Result<_, String> = (|| {
                let start: u64 = parse_num(fields[0], "start_block")?;
                let num: u64 = parse_num(fields[1], "num_blocks")?;
                parse_num::<i64>(fields[2], "ignore")?;
                parse_num::<i64>(fields[3], "request_no")?;
                if num > 0 && start.checked_add(num - 1).is_none() {
                    return Err(format!("block range {start}+{num} overflows u64"));
                }
                Ok((start, num))
            })();
            match parsed {
                Ok((_, 0)) => continue,
                Ok((start, num)) => self.pending = Some((start, num)),
                Err(reason) => return Err(self.malformed(reason)),
            }
        }
    }

    fn next_lirs(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            let Some(line) = next_line!(self) else {
                return Ok(None);
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('*') {
                continue;
            }
            let parsed = if line.split_ascii_whitespace().nth(1).is_some() {
                Err(format!("expected one key, found `{line}`"))
            } else {
                parse_key(line)
            };
            return match parsed {
                Ok(key) => Ok(Some(Request { key, size: 1 })),
                Err(reason) => Err(self.malformed(reason)),
            };
        }
    }

    fn next_csv(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            let Some(line) = next_line!(self) else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            let (size_col, lbn_col, n_fields) = match self.csv_columns {
                Some(c) => c,
                None => {
                    let first = line.split(',').next().unwrap_or("").trim();
                    let columns = if first.parse::<f64>().is_ok() {
                        (3, 4, 5) // no header: version,time,op,size,lbn
                    } else {
                        match csv_header(line) {
                            Ok(c) => {
                                self.csv_columns = Some(c);
                                continue;
                            }
                            Err(reason) => return Err(self.malformed(reason)),
                        }
                    };
                    self.csv_columns = Some(columns);
                    columns
                }
            };
            let parsed: Result<_, String> = (|| {
                let mut size = None;
                let mut lbn = None;
                let mut count = 0;
                for (i, f) in line.split(',').enumerate() {
                    if i == size_col {
                        size = Some(f);
                    } else if i == lbn_col {
                        lbn = Some(f);
                    }
                    count += 1;
                }
                match (size, lbn) {
                    (Some(size), Some(lbn)) if count == n_fields => {
                        let size: u32 = parse_num(size, "size")?;
                        let key = parse_key(lbn.trim()).map_err(|r| format!("field `lbn`: {r}"))?;
                        Ok(Request { key, size })
                    }
                    _ => Err(format!("expected {n_fields} fields, found {count}")),
                }
            })();
            return parsed.map(Some).map_err(|reason| self.malformed(reason));
        }
    }

    fn next_twitter(&mut self) -> Result<Option<Request>, TraceError> {
        loop {
            let Some(line) = next_line!(self) else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = [""; 7];
            let mut count = 0;
            for f in line.split(',') {
                if count < 7 {
                    fields[count] = f;
                }
                count += 1;
            }
            if count != 7 {
                return Err(self.malformed(format!("expected 7 fields, found {count}")));
            }
            if self.position == 1 && fields[0].trim() == "timestamp" {
                continue; // tolerate a header line
            }
            let parsed: Result<_, String> = (|| {
                let key_size: u32 = parse_num(fields[2], "key_size")?;
                let value_size: u32 = parse_num(fields[3], "value_size")?;
                let size = key_size.checked_add(value_size).ok_or_else(|| {
                    format!(
                        "key_size + value_size = {} overflows u32",
                        u64::from(key_size) + u64::from(value_size)
                    )
                })?;
                Ok((fnv1a(fields[1].trim().as_bytes()), size))
            })();
            let (key, size) = match parsed {
                Ok(v) => v,
                Err(reason) => return Err(self.malformed(reason)),
            };
            let op = fields[5].trim();
            if op.eq_ignore_ascii_case("get") || op.eq_ignore_ascii_case("gets") {
                return Ok(Some(Request { key, size }));
            }
        }
    }
}

impl Iterator for TraceReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_request() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for TraceReader {}

/// Parses a libCacheSim CSV header into `(size column, lbn column, field count)`.
fn csv_header(line: &str) -> Result<(usize, usize, usize), String> {
    let names: Vec<String> = line
        .split(',')
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    let find = |want: &str| {
        names.iter().position(|n| n == want).ok_or_else(|| {
            format!("header `{line}` has no `{want}` column (expected `version,time,op,size,lbn`)")
        })
    };
    Ok((find("size")?, find("lbn")?, names.len()))
}

/// Parses a trimmed integer field, naming the field on error.
fn parse_num<T: std::str::FromStr>(field: &str, name: &str) -> Result<T, String> {
    let field = field.trim();
    field
        .parse()
        .map_err(|_| format!("field `{name}`: invalid integer `{field}`"))
}

/// Parses a key: a `u64`, or a negative `i64` reinterpreted as two's complement.
fn parse_key(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .or_else(|_| s.parse::<i64>().map(|v| v as u64))
        .map_err(|_| format!("invalid key `{s}`"))
}

/// 64-bit FNV-1a: a fixed, seed-free hash, so keys are reproducible across runs.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<TraceReader>();
    }

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parse_helpers() {
        assert_eq!(parse_key("42"), Ok(42));
        assert_eq!(parse_key("-1"), Ok(u64::MAX));
        assert!(parse_key("x").is_err());
        assert_eq!(parse_num::<u32>(" 7 ", "size"), Ok(7));
        assert_eq!(
            parse_num::<u32>("7x", "size"),
            Err("field `size`: invalid integer `7x`".into())
        );
        assert_eq!(csv_header("version,time,op,size,lbn"), Ok((3, 4, 5)));
        assert_eq!(csv_header("lbn,size"), Ok((1, 0, 2)));
        assert!(csv_header("a,b,c").is_err());
    }
}
