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

    fn lamp() -> Product {
        Product {
            id: 7,
            name: "lamp".into(),
            price_cents: 1999,
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let p = lamp();
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

    /// The bytes other languages read: a MessagePack map keyed by field name (bytes from the
    /// MessagePack spec: fixmap, fixstr, positive fixint, uint 16).
    #[cfg(feature = "msgpack")]
    #[test]
    fn msgpack_writes_a_map_with_field_names() {
        let bytes = Codec::<Product>::encode(&MsgPack, &lamp()).unwrap();
        let mut expected = vec![0x83, 0xa2, b'i', b'd', 0x07, 0xa4];
        expected.extend_from_slice(b"name");
        expected.push(0xa4);
        expected.extend_from_slice(b"lamp");
        expected.push(0xab);
        expected.extend_from_slice(b"price_cents");
        expected.extend_from_slice(&[0xcd, 0x07, 0xcf]);
        assert_eq!(bytes, expected);
        assert_eq!(Codec::<Product>::decode(&MsgPack, &bytes).unwrap(), lamp());
        assert_eq!(Codec::<Product>::name(&MsgPack), "msgpack");
        let err = Codec::<Product>::decode(&MsgPack, &bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(err.codec, "msgpack");
        assert!(Codec::<Product>::decode(&MsgPack, b"\xc1").is_err());
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_writes_compact_json() {
        let bytes = Codec::<Product>::encode(&JsonCodec, &lamp()).unwrap();
        assert_eq!(bytes, br#"{"id":7,"name":"lamp","price_cents":1999}"#);
        assert_eq!(
            Codec::<Product>::decode(&JsonCodec, &bytes).unwrap(),
            lamp()
        );
        assert_eq!(Codec::<Product>::name(&JsonCodec), "json");
        let err = Codec::<Product>::decode(&JsonCodec, br#"{"id":7}"#).unwrap_err();
        assert_eq!(err.codec, "json");
    }
}
