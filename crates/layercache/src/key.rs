//! [`CacheKey`]: how a key becomes the bytes of its L2 key.

use std::borrow::Cow;

/// A key that can be written as bytes for L2 (after the cache's name prefix), and read
/// back from them (how a backplane message names the key to drop).
///
/// Implemented for strings (their UTF-8), integers (decimal text, so other languages can
/// build the same Redis keys) and byte vectors (as they are). Equal keys must encode
/// equally, and distinct keys distinctly.
pub trait CacheKey {
    /// Appends the key's bytes to `out`.
    fn encode_key(&self, out: &mut Vec<u8>);

    /// The key whose [`encode_key`](Self::encode_key) bytes are `bytes`, or `None` if they
    /// are not such a key. With a backplane, an instance that receives an invalidation of a
    /// key it cannot decode drops its whole L1 (correct, but costly): implement it for your
    /// own key types. Default: `None`.
    fn decode_key(bytes: &[u8]) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = bytes;
        None
    }
}

impl CacheKey for str {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl CacheKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.as_str().encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl CacheKey for Cow<'_, str> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.as_ref().encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok().map(Cow::Owned)
    }
}

impl CacheKey for [u8] {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl CacheKey for Vec<u8> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

impl<T: CacheKey + ?Sized> CacheKey for &T {
    fn encode_key(&self, out: &mut Vec<u8>) {
        (**self).encode_key(out);
    }
}

macro_rules! int_keys {
    ($($t:ty),*) => {$(
        impl CacheKey for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                use std::io::Write;
                let _ = write!(out, "{self}");
            }
            fn decode_key(bytes: &[u8]) -> Option<Self> {
                // Only the canonical decimal form `encode_key` writes (no `+`, no leading
                // zeros), so one key has one encoding.
                let text = std::str::from_utf8(bytes).ok()?;
                let key: $t = text.parse().ok()?;
                (key.to_string() == text).then_some(key)
            }
        }
    )*};
}
int_keys!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

/// Any serde type as a key, encoded as compact JSON (so the Redis key is readable):
/// `Json(MyKey { .. })`. With the `json` feature.
#[cfg(feature = "json")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Json<T>(pub T);

#[cfg(feature = "json")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> CacheKey for Json<T> {
    fn decode_key(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok().map(Json)
    }
    fn encode_key(&self, out: &mut Vec<u8>) {
        // Serializing plain data into a Vec cannot fail except for maps with non-string
        // keys; such a key falls back to its error text, which stays deterministic.
        if let Err(e) = serde_json::to_writer(&mut *out, &self.0) {
            out.extend_from_slice(e.to_string().as_bytes());
        }
    }
}

/// The full L2 key: `prefix:` then the key's bytes.
pub(crate) fn l2_key<K: CacheKey + ?Sized>(prefix: &str, key: &K) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 17);
    out.extend_from_slice(prefix.as_bytes());
    out.push(b':');
    key.encode_key(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_readably() {
        assert_eq!(l2_key("products", &42u64), b"products:42");
        assert_eq!(l2_key("p", &-7i32), b"p:-7");
        assert_eq!(l2_key("p", "sku-1"), b"p:sku-1");
        assert_eq!(l2_key("p", &String::from("x")), b"p:x");
        assert_eq!(l2_key("p", &vec![0u8, 255]), b"p:\x00\xff");
    }

    fn back<K: CacheKey + PartialEq + std::fmt::Debug>(key: K) {
        let mut bytes = Vec::new();
        key.encode_key(&mut bytes);
        assert_eq!(K::decode_key(&bytes), Some(key));
    }

    #[test]
    fn keys_decode_from_what_they_encode_and_nothing_else() {
        back(42u64);
        back(-7i32);
        back(u128::MAX);
        back(String::from("sku-1"));
        back(vec![0u8, 255]);
        back(Cow::<str>::Owned("x".into()));
        for bad in [
            &b"+1"[..],
            b"01",
            b"1 ",
            b"",
            b"x",
            b"99999999999999999999999",
        ] {
            assert_eq!(u64::decode_key(bad), None, "{bad:?}");
        }
        assert_eq!(i32::decode_key(b"-0"), None);
        assert_eq!(String::decode_key(&[0xff]), None);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_keys_are_compact_json() {
        back(Json((1, String::from("a"))));
        assert_eq!(l2_key("p", &Json((1, String::from("a")))), br#"p:[1,"a"]"#);
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Sku {
            shop: u32,
            code: String,
        }
        assert_eq!(
            l2_key(
                "p",
                &Json(Sku {
                    shop: 3,
                    code: "x-1".into()
                })
            ),
            br#"p:{"shop":3,"code":"x-1"}"#
        );
    }
}
