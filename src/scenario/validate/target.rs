//! Checks of `[target]`: where the server is, how to log in, the TLS files.
//! URLs are parsed here, once, with the parser `connect` uses, so a bad URL
//! is a usage error before anything starts.

use std::path::Path;

use super::{require, Check, Invalid, Scenario};
use crate::target::url;

pub(super) fn target(s: &Scenario) -> Check {
    let t = &s.target;
    require((1..=5).contains(&t.nodes), "target.nodes", || {
        format!("{} nodes: an embedded target has 1 to 5", t.nodes)
    })?;
    if t.url.is_none() {
        require(s.stream.replicas <= t.nodes, "stream.replicas", || {
            format!(
                "{} replicas need at least as many nodes; set target.nodes = {}",
                s.stream.replicas, s.stream.replicas
            )
        })?;
        require(
            t.tls.is_none() && t.credentials.is_none(),
            "target.url",
            || "TLS and credentials apply to an external server; set target.url".into(),
        )?;
    }
    login(s)?;
    files(s)
}

/// One way to log in: user and password, a token, a `.creds` file, or the
/// URL's own userinfo. Two would leave the server to pick one silently.
fn login(s: &Scenario) -> Check {
    let t = &s.target;
    require(
        t.user.is_some() == t.password.is_some(),
        "target.user",
        || "user and password go together; set both or neither".into(),
    )?;
    let given: Vec<&str> = [
        ("target.user/target.password", t.user.is_some()),
        ("target.token", t.token.is_some()),
        ("target.credentials", t.credentials.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    require(given.len() <= 1, "target.token", || {
        format!(
            "{} are two ways to log in; keep one of them",
            given.join(" and ")
        )
    })?;
    let Some(text) = &t.url else { return Ok(()) };
    let parsed = url::parse(text).map_err(|e| Invalid {
        key: "target.url".into(),
        message: e.to_string(),
    })?;
    require(
        parsed.credentials.is_none() || given.is_empty(),
        "target.url",
        || {
            format!(
                "credentials are given twice: in the URL and in {} of the scenario; \
                 keep one of them (the URL's userinfo, or the scenario's keys)",
                given.join(" and ")
            )
        },
    )
}

/// Files named in `[target]` must exist now, whatever the URL's scheme:
/// finding out at the first TLS handshake is too late.
fn files(s: &Scenario) -> Check {
    let t = &s.target;
    let tls = t.tls.as_ref();
    for (key, path) in [
        ("target.credentials", t.credentials.as_deref()),
        ("target.tls.ca_file", tls.and_then(|t| t.ca_file.as_deref())),
        (
            "target.tls.cert_file",
            tls.and_then(|t| t.cert_file.as_deref()),
        ),
        (
            "target.tls.key_file",
            tls.and_then(|t| t.key_file.as_deref()),
        ),
    ] {
        let Some(path) = path else { continue };
        require(path.is_file(), key, || missing(path))?;
    }
    let (cert, key) = (
        tls.and_then(|t| t.cert_file.as_ref()),
        tls.and_then(|t| t.key_file.as_ref()),
    );
    require(
        cert.is_some() == key.is_some(),
        "target.tls.cert_file",
        || "cert_file and key_file go together (mutual TLS); set both or neither".into(),
    )
}

fn missing(path: &Path) -> String {
    let why = match std::fs::metadata(path) {
        Ok(_) => "is not a file".to_string(),
        Err(e) => e.to_string(),
    };
    format!(
        "`{}`: {why}; give the path of an existing file (a relative path starts from the working directory)",
        path.display()
    )
}
