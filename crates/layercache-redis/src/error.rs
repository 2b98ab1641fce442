//! The crate's own errors (connect time); call-time errors are [`layercache_tier::TierError`].

/// Why a [`RedisTier`](crate::RedisTier) could not be created.
///
/// URLs in messages have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL is not a valid Redis URL (`redis://[user:password@]host[:port][/db]`, or
    /// `redis+unix:///path`).
    #[error("invalid Redis URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL, password redacted.
        url: String,
        /// What redis-rs said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No node was given to [`RedisTier::connect_cluster`](crate::RedisTier::connect_cluster).
    #[error("no Redis Cluster node given")]
    NoNodes,
    /// The server (or, for a cluster, every node given) could not be reached, refused the
    /// connection or the handshake, or is not what was asked for (a cluster node that is not
    /// in cluster mode, a cluster whose slots are not all served).
    #[error("could not connect to Redis at {target}: {source}")]
    Connect {
        /// The URL (or, for a cluster, the URLs joined by `, `), passwords redacted.
        target: String,
        /// What redis-rs said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `url` with the password of its user-info part (`user:password@`) replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = match userinfo.find(':') {
        Some(colon) => &userinfo[..colon],
        // `redis://password@host` is accepted by some clients: hide it all.
        None => "",
    };
    format!("{}{user}:***{}", &url[..scheme_end + 3], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact("redis://alice:s3cr@t@host:6379/1?x=y"),
            "redis://alice:***@host:6379/1?x=y"
        );
        assert_eq!(redact("rediss://:pw@host"), "rediss://:***@host");
        assert_eq!(redact("redis://pw@host"), "redis://:***@host");
        assert_eq!(redact("not a url"), "not a url");
        assert_eq!(redact("redis://host/path@x"), "redis://host/path@x");
    }

    #[test]
    fn messages_name_the_target() {
        let e = Error::Connect {
            target: "redis://h:1".into(),
            source: "refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "could not connect to Redis at redis://h:1: refused"
        );
        assert_eq!(Error::NoNodes.to_string(), "no Redis Cluster node given");
    }
}
