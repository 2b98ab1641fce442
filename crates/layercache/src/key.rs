//! [`CacheKey`]: how a key becomes the bytes of its L2 key.

use std::borrow::Cow;

/// A key that can be written as bytes for L2 (after the cache's name prefix).
///
/// Implemented for strings (their UTF-8), integers (decimal text, so other languages can
/// build the same Redis keys) and byte vectors (as they are). Equal keys must encode
/// equally, and distinct keys distinctly.
pub trait CacheKey {
    /// Appends the key's bytes to `out`.
    fn encode_key(&self, out: &mut Vec<u8>);
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
}

impl CacheKey for Cow<'_, str> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.as_ref().encode_key(out);
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
impl<T: serde::Serialize> CacheKey for Json<T> {
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

    #[cfg(feature = "json")]
    #[test]
    fn json_keys_are_compact_json() {
        assert_eq!(l2_key("p", &Json((1, "a"))), br#"p:[1,"a"]"#);
        #[derive(serde::Serialize)]
        struct Sku {
            shop: u32,
            code: &'static str,
        }
        assert_eq!(
            l2_key(
                "p",
                &Json(Sku {
                    shop: 3,
                    code: "x-1"
                })
            ),
            br#"p:{"shop":3,"code":"x-1"}"#
        );
    }
}
