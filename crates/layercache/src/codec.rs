//! [`Codec`]: how values become bytes for L2.
//!
//! The default, [`Postcard`], is a compact binary serde format (a `u64` is 1–10 bytes, a
//! struct is its fields in order, no field names). It was chosen over `bincode`
//! (unmaintained) and over MessagePack because it is the smallest and fastest of the three
//! for Rust-only services; [`MsgPack`] (feature `msgpack`) and [`JsonCodec`] (feature
//! `json`) are there for services in other languages that read the same keys.
//!
//! A codec only turns a value into bytes and back; compression and the envelope (version,
//! key check, timestamps, checksum) are added around its output by the cache.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CodecError;

/// Encodes values of type `V` for L2, and decodes them back.
pub trait Codec<V>: Send + Sync + 'static {
    /// The codec's name, for errors and metrics.
    fn name(&self) -> &'static str;

    /// The bytes of `value`.
    ///
    /// # Errors
    /// [`CodecError`] if the value cannot be represented.
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError>;

    /// The value of `bytes`.
    ///
    /// # Errors
    /// [`CodecError`] if the bytes are not a value of this type in this format (the cache
    /// then treats the entry as a miss).
    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError>;
}

/// Compact binary serde format ([postcard](https://docs.rs/postcard)); the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Postcard;

impl<V: Serialize + DeserializeOwned> Codec<V> for Postcard {
    fn name(&self) -> &'static str {
        "postcard"
    }
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError> {
        postcard::to_allocvec(value).map_err(|e| CodecError::new("postcard", e))
    }
    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError> {
        postcard::from_bytes(bytes).map_err(|e| CodecError::new("postcard", e))
    }
}

/// MessagePack with field names ([rmp-serde](https://docs.rs/rmp-serde)), readable from
/// most languages. Feature `msgpack`.
#[cfg(feature = "msgpack")]
#[derive(Clone, Copy, Debug, Default)]
pub struct MsgPack;

#[cfg(feature = "msgpack")]
impl<V: Serialize + DeserializeOwned> Codec<V> for MsgPack {
    fn name(&self) -> &'static str {
        "msgpack"
    }
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(|e| CodecError::new("msgpack", e))
    }
    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError> {
        rmp_serde::from_slice(bytes).map_err(|e| CodecError::new("msgpack", e))
    }
}

/// JSON ([serde_json](https://docs.rs/serde_json)). Feature `json`.
#[cfg(feature = "json")]
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

#[cfg(feature = "json")]
impl<V: Serialize + DeserializeOwned> Codec<V> for JsonCodec {
    fn name(&self) -> &'static str {
        "json"
    }
    fn encode(&self, value: &V) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::new("json", e))
    }
    fn decode(&self, bytes: &[u8]) -> Result<V, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::new("json", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Product {
        id: u64,
        name: String,
        price_cents: u32,
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let p = Product {
            id: 7,
            name: "lamp".into(),
            price_cents: 1999,
        };
        let bytes = Codec::<Product>::encode(&Postcard, &p).unwrap();
        assert!(
            bytes.len() < 12,
            "postcard is compact: {} bytes",
            bytes.len()
        );
        assert_eq!(Codec::<Product>::decode(&Postcard, &bytes).unwrap(), p);
        assert!(Codec::<Product>::decode(&Postcard, &[0xff; 3]).is_err());
        assert!(Codec::<Product>::decode(&Postcard, &[]).is_err());
    }
}
