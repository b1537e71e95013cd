//! NATS URLs as the user writes them: parsed once into bare server
//! addresses plus the credentials their userinfo carried.
//!
//! async-nats 0.51 authenticates only with the credentials set on its
//! `ConnectOptions`: a password or token written in the URL is never sent,
//! and its debug logs print each address, password included. So the
//! userinfo is taken out here; the client only ever sees bare addresses and
//! explicit credentials. Validation parses with the same function, so a URL
//! that reaches [`super::connect`] is known to be well formed.

use std::fmt;

use async_nats::ServerAddr;

use super::redact;

/// Credentials written in a URL's userinfo, as the Go client reads them:
/// `user:password@` is a user and password, a lone `token@` a token.
#[derive(Clone, PartialEq, Eq)]
pub enum UrlCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

impl UrlCredentials {
    /// The part that must never be printed.
    pub fn secret(&self) -> &str {
        match self {
            UrlCredentials::UserPassword { password, .. } => password,
            UrlCredentials::Token(token) => token,
        }
    }
}

/// Never prints the secret, whoever logs it.
impl fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlCredentials::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: *** }}")
            }
            UrlCredentials::Token(_) => write!(f, "Token(***)"),
        }
    }
}

/// One or more servers, without userinfo, and the credentials they carried.
#[derive(Debug, Clone)]
pub struct NatsUrl {
    pub servers: Vec<ServerAddr>,
    pub credentials: Option<UrlCredentials>,
}

/// A URL that cannot be used. Messages show the URL with its secret hidden.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("no server given; write nats://host:port (several separated by commas)")]
    Empty,
    #[error(
        "`{url}` is not a NATS URL ({reason}); write nats://host:port or tls://host:port, \
         with user:password@ or token@ before the host if the server needs them"
    )]
    Malformed { url: String, reason: String },
    #[error(
        "the servers in `{url}` carry different credentials; the client has one login for \
         every server, so write it once (on one server or on each)"
    )]
    MixedCredentials { url: String },
}

/// Parses `text`: servers separated by commas, `nats://` assumed when no
/// scheme is given (as async-nats does), port 4222 when none is given.
pub fn parse(text: &str) -> Result<NatsUrl, UrlError> {
    if text.trim().is_empty() {
        return Err(UrlError::Empty);
    }
    let mut servers = Vec::new();
    let mut credentials: Option<UrlCredentials> = None;
    for one in text.split(',').map(str::trim) {
        let (server, found) = parse_one(one)?;
        servers.push(server);
        match (&credentials, found) {
            (_, None) => {}
            (None, Some(found)) => credentials = Some(found),
            (Some(known), Some(found)) if *known == found => {}
            (Some(_), Some(_)) => {
                return Err(UrlError::MixedCredentials { url: redact(text) });
            }
        }
    }
    Ok(NatsUrl {
        servers,
        credentials,
    })
}

fn parse_one(one: &str) -> Result<(ServerAddr, Option<UrlCredentials>), UrlError> {
    let malformed = |reason: &str| UrlError::Malformed {
        url: redact(one),
        reason: reason.to_string(),
    };
    if one.is_empty() {
        return Err(malformed("an empty entry between commas"));
    }
    let address: ServerAddr = one.parse().map_err(|e: std::io::Error| {
        let reason = e.to_string();
        malformed(reason.trim_start_matches("NATS server URL is invalid: "))
    })?;
    if address.host().is_empty() {
        return Err(malformed("no host"));
    }
    let mut url = address.into_inner();
    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        ("", Some(_)) => return Err(malformed("a password without a user")),
        (user, Some(password)) => Some(UrlCredentials::UserPassword {
            user: percent_decode(user),
            password: percent_decode(password),
        }),
        (token, None) => Some(UrlCredentials::Token(percent_decode(token))),
    };
    if url.set_password(None).is_err() || url.set_username("").is_err() {
        return Err(malformed("its userinfo cannot be taken out"));
    }
    let bare = ServerAddr::from_url(url).map_err(|e| malformed(&e.to_string()))?;
    Ok((bare, credentials))
}

/// Userinfo comes percent-encoded (`p%40ss` for `p@ss`); the server wants
/// the characters themselves.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(text: &str) -> Option<UrlCredentials> {
        parse(text).unwrap().credentials
    }

    #[test]
    fn user_and_password_come_out_of_the_url() {
        let parsed = parse("nats://alice:s3cret@127.0.0.1:4222").unwrap();
        assert_eq!(
            parsed.credentials,
            Some(UrlCredentials::UserPassword {
                user: "alice".into(),
                password: "s3cret".into()
            })
        );
        assert_eq!(parsed.servers.len(), 1);
        let bare = parsed.servers[0].as_url_str();
        assert_eq!(bare, "nats://127.0.0.1:4222");
        assert!(!parsed.servers[0].has_user_pass());
    }

    #[test]
    fn a_lone_userinfo_is_a_token() {
        assert_eq!(
            credentials("nats://s3cr3ttoken@host:4222"),
            Some(UrlCredentials::Token("s3cr3ttoken".into()))
        );
        assert_eq!(credentials("nats://host:4222"), None);
        assert_eq!(credentials("host"), None, "nats:// and 4222 are assumed");
    }

    #[test]
    fn encoded_characters_are_decoded() {
        assert_eq!(
            credentials("nats://al%20ice:p%40ss%2Fw%3Ad@host"),
            Some(UrlCredentials::UserPassword {
                user: "al ice".into(),
                password: "p@ss/w:d".into()
            })
        );
        assert_eq!(percent_decode("100%"), "100%", "a stray % stays");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn several_servers_share_one_login() {
        let parsed = parse("nats://a:p@h1:4222, nats://h2:4223").unwrap();
        assert_eq!(parsed.servers.len(), 2);
        assert!(parsed.credentials.is_some());
        assert!(parse("nats://a:p@h1,nats://a:p@h2").is_ok());
        let mixed = parse("nats://a:p@h1,nats://b:q@h2").unwrap_err();
        assert!(matches!(mixed, UrlError::MixedCredentials { .. }));
        assert!(!mixed.to_string().contains(":q@"), "{mixed}");
    }

    #[test]
    fn malformed_urls_say_what_to_write_without_the_secret() {
        for text in [
            "nats://host:notaport",
            "::",
            "http://host:4222",
            "nats://a,,nats://b",
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                matches!(e, UrlError::Malformed { .. }),
                "{text}: {e:?} should be malformed"
            );
            assert!(e.to_string().contains("nats://host:port"), "{e}");
        }
        assert_eq!(parse(" ").unwrap_err(), UrlError::Empty);
        let e = parse("nats://alice:s3cret@host:notaport").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let c = credentials("nats://alice:s3cret@h").unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.secret(), "s3cret");
        let t = credentials("nats://t0k3n@h").unwrap();
        assert!(!format!("{t:?}").contains("t0k3n"));
    }
}
