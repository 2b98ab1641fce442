//! An embedded persistent layercache tier (work in progress).
