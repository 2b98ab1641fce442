//! Trace formats, compression, and format detection from file names and content.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use crate::error::TraceError;

/// A trace file format. See the [crate docs](crate#formats) for the layouts.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ARC paper traces (`.lis`): `start_block num_blocks ignore request_no`,
    /// each line expanded to `num_blocks` consecutive keys.
    Arc,
    /// LIRS paper traces: one integer key per line; blank lines and lines
    /// starting with `*` are skipped.
    Lirs,
    /// cache2k benchmark traces: a stream of big-endian `i32` keys.
    Cache2k,
    /// libCacheSim `oracleGeneral`: packed little-endian 24-byte records.
    OracleGeneral,
    /// libCacheSim CSV: `version,time,op,size,lbn` (header optional).
    LibCacheSimCsv,
    /// Twitter cache-trace CSV: `timestamp,anon_key,key_size,value_size,client_id,op,ttl`.
    TwitterCsv,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 6] = [
        Format::Arc,
        Format::Lirs,
        Format::Cache2k,
        Format::OracleGeneral,
        Format::LibCacheSimCsv,
        Format::TwitterCsv,
    ];

    /// The canonical name: `"arc"`, `"lirs"`, `"cache2k"`, `"oracle-general"`, `"csv"` or `"twitter"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Arc => "arc",
            Format::Lirs => "lirs",
            Format::Cache2k => "cache2k",
            Format::OracleGeneral => "oracle-general",
            Format::LibCacheSimCsv => "csv",
            Format::TwitterCsv => "twitter",
        }
    }

    /// Whether requests carry object sizes in bytes (otherwise every size is 1).
    pub fn has_sizes(self) -> bool {
        matches!(
            self,
            Format::OracleGeneral | Format::LibCacheSimCsv | Format::TwitterCsv
        )
    }

    /// Whether the format is binary (errors then count records, not lines).
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Cache2k | Format::OracleGeneral)
    }

    /// Infers the format from the file name alone (no I/O), after stripping a
    /// `.zst`, `.gz` or `.xz` suffix; extensions are matched case-insensitively.
    ///
    /// * `.lis` → [`Format::Arc`]
    /// * `.oracleGeneral.bin` or `.oracleGeneral` → [`Format::OracleGeneral`]
    /// * `.csv` → [`Format::LibCacheSimCsv`] ([`TraceReader::open`](crate::TraceReader::open)
    ///   and [`Format::detect`] additionally sniff the first line and may pick
    ///   [`Format::TwitterCsv`])
    /// * `.trace` is used by both LIRS (text) and cache2k (binary) files, so it
    ///   is resolved by the parent directory's name: `lirs` → [`Format::Lirs`],
    ///   `cache2k` → [`Format::Cache2k`]; any other directory gives `None`
    ///   (see [`Format::detect`] for content sniffing).
    /// * anything else → `None`.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let (stem, _) = Compression::split(&name);
        if stem.ends_with(".lis") {
            Some(Format::Arc)
        } else if stem.ends_with(".oraclegeneral.bin") || stem.ends_with(".oraclegeneral") {
            Some(Format::OracleGeneral)
        } else if stem.ends_with(".csv") {
            Some(Format::LibCacheSimCsv)
        } else if stem.ends_with(".trace") {
            let parent = path.parent()?.file_name()?.to_str()?.to_ascii_lowercase();
            match parent.as_str() {
                "lirs" => Some(Format::Lirs),
                "cache2k" => Some(Format::Cache2k),
                _ => None,
            }
        } else {
            None
        }
    }

    /// Infers the format from the file name and, where the name is not
    /// enough, from the first (decompressed) bytes of the file:
    ///
    /// * a `.csv` file whose first line has 7 comma-separated fields with an
    ///   alphabetic 6th field (the `op`, e.g. `get`) is [`Format::TwitterCsv`];
    ///   otherwise it is [`Format::LibCacheSimCsv`];
    /// * a `.trace` file that [`from_path`](Format::from_path) cannot place is
    ///   [`Format::Lirs`] if its first 4 KiB are printable ASCII text and
    ///   [`Format::Cache2k`] otherwise (binary keys below 2^24 always contain
    ///   a zero byte);
    /// * everything else as [`from_path`](Format::from_path), or
    ///   [`TraceError::UnknownFormat`].
    pub fn detect(path: &Path) -> Result<Format, TraceError> {
        let unknown = || TraceError::UnknownFormat {
            path: path.to_path_buf(),
        };
        match Format::from_path(path) {
            Some(Format::LibCacheSimCsv) => {
                let head = read_head(path)?;
                let first = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
                Ok(if looks_like_twitter(first) {
                    Format::TwitterCsv
                } else {
                    Format::LibCacheSimCsv
                })
            }
            Some(f) => Ok(f),
            None => {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_ascii_lowercase)
                    .ok_or_else(unknown)?;
                if !Compression::split(&name).0.ends_with(".trace") {
                    return Err(unknown());
                }
                let head = read_head(path)?;
                let text = head
                    .iter()
                    .all(|&b| matches!(b, b'\t' | b'\n' | b'\r' | b' '..=b'~'));
                Ok(if text { Format::Lirs } else { Format::Cache2k })
            }
        }
    }
}

/// Reads up to 4 KiB of the decompressed file.
fn read_head(path: &Path) -> Result<Vec<u8>, TraceError> {
    let input = crate::reader::open_decompressed(path)?;
    let mut head = Vec::with_capacity(4096);
    input
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| TraceError::io(path, e))?;
    Ok(head)
}

fn looks_like_twitter(line: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(line) else {
        return false;
    };
    let fields: Vec<&str> = line.trim_end().split(',').collect();
    fields.len() == 7 && {
        let op = fields[5].trim();
        !op.is_empty() && op.bytes().all(|b| b.is_ascii_alphabetic())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = TraceError;

    /// Parses a canonical [name](Format::name) or an alias, case-insensitively:
    /// `lis`; `oracle`, `oraclegeneral`, `oracle_general`, `libcachesim`;
    /// `libcachesim-csv`, `lcs-csv`; `twitter-csv`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "arc" | "lis" => Format::Arc,
            "lirs" => Format::Lirs,
            "cache2k" => Format::Cache2k,
            "oracle-general" | "oraclegeneral" | "oracle_general" | "oracle" | "libcachesim" => {
                Format::OracleGeneral
            }
            "csv" | "libcachesim-csv" | "lcs-csv" => Format::LibCacheSimCsv,
            "twitter" | "twitter-csv" => Format::TwitterCsv,
            _ => {
                return Err(TraceError::InvalidFormatName {
                    name: s.to_string(),
                })
            }
        })
    }
}

/// The comma-separated list of canonical format names, for error messages.
pub(crate) fn valid_names() -> String {
    Format::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Transparent compression, chosen by the file's last extension.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Not compressed.
    None,
    /// `.zst`: Zstandard.
    Zstd,
    /// `.gz`: gzip (multi-member files are read to the end).
    Gzip,
    /// `.xz`: xz / LZMA2 (concatenated streams are read to the end).
    Xz,
}

impl Compression {
    /// The compression implied by the file name's last extension (case-insensitive).
    pub fn from_path(path: &Path) -> Compression {
        path.file_name()
            .and_then(|n| n.to_str())
            .map(|n| Compression::split(&n.to_ascii_lowercase()).1)
            .unwrap_or(Compression::None)
    }

    /// Splits a lower-case file name into the name without the compression
    /// suffix, and the compression.
    fn split(name: &str) -> (&str, Compression) {
        for (suffix, c) in [
            (".zst", Compression::Zstd),
            (".gz", Compression::Gzip),
            (".xz", Compression::Xz),
        ] {
            if let Some(stem) = name.strip_suffix(suffix) {
                return (stem, c);
            }
        }
        (name, Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_path_by_extension() {
        let f = |p: &str| Format::from_path(Path::new(p));
        assert_eq!(f("a/OLTP.lis.zst"), Some(Format::Arc));
        assert_eq!(f("P3.LIS"), Some(Format::Arc));
        assert_eq!(f("x/lirs/loop.trace.gz"), Some(Format::Lirs));
        assert_eq!(f("x/cache2k/web07.trace.xz"), Some(Format::Cache2k));
        assert_eq!(f("x/other/web07.trace.xz"), None);
        assert_eq!(f("web07.trace"), None);
        assert_eq!(
            f("cloudPhysicsIO.oracleGeneral.bin"),
            Some(Format::OracleGeneral)
        );
        assert_eq!(f("w.oracleGeneral.zst"), Some(Format::OracleGeneral));
        assert_eq!(f("w.oracleGeneral.bin.zst"), Some(Format::OracleGeneral));
        assert_eq!(f("cloudPhysicsIO.csv"), Some(Format::LibCacheSimCsv));
        assert_eq!(f("t.csv.gz"), Some(Format::LibCacheSimCsv));
        assert_eq!(f("t.bin"), None);
        assert_eq!(f("noext"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn compression_by_extension() {
        assert_eq!(
            Compression::from_path(Path::new("a.lis.zst")),
            Compression::Zstd
        );
        assert_eq!(
            Compression::from_path(Path::new("a.trace.GZ")),
            Compression::Gzip
        );
        assert_eq!(
            Compression::from_path(Path::new("a.trace.xz")),
            Compression::Xz
        );
        assert_eq!(
            Compression::from_path(Path::new("a.lis")),
            Compression::None
        );
    }

    #[test]
    fn names_round_trip_and_aliases() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!("LIS".parse::<Format>().unwrap(), Format::Arc);
        assert_eq!(
            "oracleGeneral".parse::<Format>().unwrap(),
            Format::OracleGeneral
        );
        assert_eq!("twitter-csv".parse::<Format>().unwrap(), Format::TwitterCsv);
        let err = "nope".parse::<Format>().unwrap_err().to_string();
        assert!(err.contains("`nope`"), "{err}");
        for f in Format::ALL {
            assert!(err.contains(f.name()), "{err}");
        }
    }

    #[test]
    fn sizes_and_binary() {
        assert!(
            !Format::Arc.has_sizes() && !Format::Lirs.has_sizes() && !Format::Cache2k.has_sizes()
        );
        assert!(Format::OracleGeneral.has_sizes());
        assert!(Format::LibCacheSimCsv.has_sizes() && Format::TwitterCsv.has_sizes());
        assert!(Format::Cache2k.is_binary() && Format::OracleGeneral.is_binary());
        assert!(!Format::Arc.is_binary());
    }

    #[test]
    fn twitter_sniffing() {
        assert!(looks_like_twitter(b"0,abc,10,200,1,get,0"));
        assert!(looks_like_twitter(b"0,abc,10,200,1,gets,0\r"));
        assert!(!looks_like_twitter(b"version,time,op,size,lbn"));
        assert!(!looks_like_twitter(b"1,2,3,4,5"));
        assert!(!looks_like_twitter(b"0,abc,10,200,1,7,0"));
        assert!(!looks_like_twitter(&[0xff, 0xfe]));
    }
}
