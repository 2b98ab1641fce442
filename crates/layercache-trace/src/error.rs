//! The crate's single error type.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What the `record` number of a [`TraceError::Malformed`] counts.
///
/// Text formats count physical lines (including blank, comment and header
/// lines); binary formats count fixed-size records.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordUnit {
    /// A 1-based line number of a text trace.
    Line,
    /// A 1-based record number of a binary trace.
    Record,
}

impl RecordUnit {
    /// The word used in error messages: `"line"` or `"record"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordUnit::Line => "line",
            RecordUnit::Record => "record",
        }
    }
}

impl fmt::Display for RecordUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error this crate reports.
///
/// Errors that concern a file name the file; malformed input also names the
/// 1-based line (text formats) or record (binary formats), e.g.
/// `OLTP.lis: line 17: expected 4 fields, found 2`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Opening, reading or decompressing the file failed (a corrupt or
    /// truncated compressed stream is reported here too).
    #[error("{}: {source}", path.display())]
    Io {
        /// The trace file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record could not be parsed: a non-numeric field, a wrong number of
    /// fields, a truncated binary record, an over-long line, ...
    #[error("{}: {unit} {record}: {reason}", path.display())]
    Malformed {
        /// The trace file.
        path: PathBuf,
        /// The 1-based line (text) or record (binary) number; see `unit`.
        record: u64,
        /// What was wrong.
        reason: String,
        /// Whether `record` counts lines or binary records.
        unit: RecordUnit,
    },
    /// The format could not be inferred from the file name (or content);
    /// pass one explicitly.
    #[error(
        "{}: cannot tell the trace format from the file name; pass one of: {}",
        path.display(),
        crate::format::valid_names()
    )]
    UnknownFormat {
        /// The trace file.
        path: PathBuf,
    },
    /// A format name given to [`Format::from_str`](std::str::FromStr) is unknown.
    #[error(
        "unknown trace format `{name}`; valid formats are: {}",
        crate::format::valid_names()
    )]
    InvalidFormatName {
        /// The name that was given.
        name: String,
    },
    /// A parameter of a generator or of the OPT simulator is out of range.
    #[error("invalid parameter: {reason}")]
    InvalidParameter {
        /// What was wrong.
        reason: String,
    },
}

impl TraceError {
    /// The file this error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TraceError::Io { path, .. }
            | TraceError::Malformed { path, .. }
            | TraceError::UnknownFormat { path } => Some(path),
            TraceError::InvalidFormatName { .. } | TraceError::InvalidParameter { .. } => None,
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        TraceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn malformed(path: &Path, unit: RecordUnit, record: u64, reason: String) -> Self {
        TraceError::Malformed {
            path: path.to_path_buf(),
            record,
            reason,
            unit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_display_names_path_and_line() {
        let e = TraceError::malformed(
            Path::new("trace.lis"),
            RecordUnit::Line,
            17,
            "expected 4 fields, found 2".into(),
        );
        assert_eq!(
            e.to_string(),
            "trace.lis: line 17: expected 4 fields, found 2"
        );
        assert_eq!(e.path(), Some(Path::new("trace.lis")));
        let e = TraceError::malformed(
            Path::new("t.bin"),
            RecordUnit::Record,
            3,
            "truncated".into(),
        );
        assert_eq!(e.to_string(), "t.bin: record 3: truncated");
    }

    #[test]
    fn io_display_and_source() {
        let e = TraceError::io(Path::new("x.zst"), io::Error::other("boom"));
        assert_eq!(e.to_string(), "x.zst: boom");
        assert!(std::error::Error::source(&e).is_some());
    }
}
