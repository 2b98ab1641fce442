//! The backplane message (being written).
