use std::path::Path;

use super::*;
use crate::scenario::parse;

const MINIMAL: &str = "[load]\nrate = 10\nduration = \"30s\"\n";

fn error_of(text: &str) -> crate::scenario::ScenarioError {
    parse(text, Path::new("s.toml")).expect_err("the scenario should be rejected")
}

#[test]
fn a_minimal_scenario_takes_every_default() {
    let s = parse(MINIMAL, Path::new("s.toml")).unwrap();
    assert_eq!(s.load.rate, Some(10.0));
    assert_eq!(s.publish.timeout, Duration::from_secs(10));
    assert_eq!(s.publish.max_retries, 3);
    assert_eq!(s.consumer.ack_wait, Duration::from_secs(30));
    assert_eq!(s.consumer.max_deliver, 5);
    assert_eq!(s.consumer.processing_timeout, Duration::from_secs(30));
    assert_eq!(s.stream.storage, crate::scenario::Storage::File);
    assert_eq!(
        s.name_or_stem(Path::new("dir/5min-10eps.toml")),
        "5min-10eps"
    );
}

#[test]
fn an_unknown_key_names_its_place_and_the_allowed_keys() {
    let e = error_of("[load]\nrat = 5\n");
    assert_eq!((e.line, e.column, e.key.as_str()), (2, 1, "load.rat"));
    assert!(
        e.message.contains("unknown field `rat`") && e.message.contains("`rate`"),
        "{}",
        e.message
    );
    assert!(e.to_string().starts_with("s.toml:2:1: `load.rat`: "), "{e}");
}

#[test]
fn a_bad_duration_says_how_to_write_one() {
    let e = error_of("[load]\nrate = 10\nduration = \"5 minutes!\"\n");
    assert_eq!((e.line, e.key.as_str()), (3, "load.duration"));
    assert!(e.message.contains("\"30s\""), "{}", e.message);
}

#[test]
fn a_bad_enum_value_lists_the_allowed_ones() {
    let e = error_of("[stream]\nstorage = \"disk\"\n[load]\nrate = 1\nduration = \"1s\"\n");
    assert_eq!((e.line, e.key.as_str()), (2, "stream.storage"));
    assert!(
        e.message.contains("`file`") && e.message.contains("`memory`"),
        "{}",
        e.message
    );
}

#[test]
fn a_syntax_error_has_a_place() {
    let e = error_of("[load\nrate = 1\n");
    assert_eq!(e.line, 1);
    assert!(e.column > 1);
}

#[test]
fn a_bad_size_is_explained() {
    let e =
        error_of("[load]\nrate = 1\nduration = \"1s\"\n[load.payload]\nsize = \"10 parsecs\"\n");
    assert_eq!((e.line, e.key.as_str()), (5, "load.payload.size"));
    assert!(e.message.contains("KiB"), "{}", e.message);
}

#[test]
fn invalid_values_point_at_their_key() {
    let cases = [
        ("[load]\nrate = 0\nduration = \"1s\"\n", 2, "load.rate"),
        ("[load]\nrate = 10\n", 1, "load.duration"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[consumer]\nerror_ratio = 1.5\n", 5, "consumer.error_ratio"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[consumer]\ntimeout_ratio = 0.6\nerror_ratio = 0.6\n", 6, "consumer.error_ratio"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[consumer]\nprocessing_timeout = \"40s\"\n", 5, "consumer.processing_timeout"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[consumer]\ndead_letter_subject = \"harness.events.dlq\"\n", 5, "consumer.dead_letter_subject"),
        ("[load]\nrate = 1\nduration = \"1s\"\nsubject = \"other.subject\"\n", 4, "load.subject"),
        ("[stream]\nname = \"has.dot\"\n[load]\nrate = 1\nduration = \"1s\"\n", 2, "stream.name"),
        ("[stream]\nreplicas = 3\n[load]\nrate = 1\nduration = \"1s\"\n", 2, "stream.replicas"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[criteria]\nchecks = [\"lost == 0\", \"lots < 3\"]\n", 5, "criteria.checks[1]"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[load.payload]\nsize = 16\n", 5, "load.payload.size"),
        ("[load]\nrate = 1\nduration = \"1s\"\n[publish.backoff]\njitter = 2\n", 5, "publish.backoff.jitter"),
    ];
    for (text, line, key) in cases {
        let e = error_of(text);
        assert_eq!((e.line, e.key.as_str()), (line, key), "{text}\n→ {e}");
        assert!(!e.message.is_empty());
    }
}

#[test]
fn phases_are_checked_one_by_one() {
    let text = "[load]\n[[load.phases]]\nkind = \"constant\"\nduration = \"10s\"\nrate = 5\n[[load.phases]]\nkind = \"ramp\"\nduration = \"10s\"\nfrom = 0\nto = 0\n";
    let e = error_of(text);
    assert_eq!((e.line, e.key.as_str()), (10, "load.phases[1].to"));
    let ok = "[load]\n[[load.phases]]\nkind = \"step\"\nduration = \"30s\"\nfrom = 10\nto = 30\nsteps = 3\n";
    assert!(parse(ok, Path::new("s.toml")).is_ok());
    let both =
        "[load]\nrate = 5\n[[load.phases]]\nkind = \"constant\"\nduration = \"10s\"\nrate = 5\n";
    assert_eq!(error_of(both).key, "load.rate");
}

#[test]
fn subjects_match_like_nats() {
    assert!(subject_matches("a.>", "a.b.c"));
    assert!(!subject_matches("a.>", "a"));
    assert!(subject_matches("a.*.c", "a.b.c"));
    assert!(!subject_matches("a.*", "a.b.c"));
    assert!(subject_matches("a.b", "a.b"));
    assert!(!subject_matches("a.b", "a.bc"));
}

#[test]
fn names_and_subjects_are_checked() {
    assert!(
        valid_name("HARNESS_DLQ") && !valid_name("a b") && !valid_name("a.b") && !valid_name("")
    );
    assert!(valid_subject("a.*.>", true) && !valid_subject("a.>.b", true));
    assert!(!valid_subject("a..b", false) && !valid_subject("a.*", false));
}

#[test]
fn faults_need_an_embedded_target_and_an_existing_node() {
    let base = "[load]\nrate = 1\nduration = \"10s\"\n";
    let ok = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"kill\"\nduration = \"1s\"\n");
    let s = parse(&ok, Path::new("s.toml")).unwrap();
    let plan = crate::plan::Plan::compile(&s).unwrap();
    assert_eq!(
        plan.faults[0].action,
        crate::faults::Action::Server {
            node: crate::faults::Node::Index(0),
            fault: crate::faults::ServerFault::Kill
        }
    );
    let external = format!("[target]\nurl = \"nats://127.0.0.1:4222\"\n{ok}");
    assert_eq!(error_of(&external).key, "faults[0].kind");
    let bad_node = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"pause\"\nnode = 2\n");
    let e = error_of(&bad_node);
    assert_eq!((e.line, e.key.as_str()), (7, "faults[0].node"));
    let bad_kind = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"explode\"\n");
    let e = error_of(&bad_kind);
    assert_eq!((e.line, e.key.as_str()), (6, "faults[0].kind"));
    assert!(
        e.message.contains("`explode`") && e.message.contains("`kill`"),
        "{}",
        e.message
    );
}

#[test]
fn network_faults_work_on_any_target_and_need_their_settings() {
    let base = "[target]\nurl = \"nats://127.0.0.1:4222\"\n[load]\nrate = 1\nduration = \"10s\"\n";
    let ok = format!(
        "{base}[[faults]]\nat = \"2s\"\nkind = \"latency\"\ndelay = \"50ms\"\njitter = \"10ms\"\n\
         direction = \"to_client\"\n[[faults]]\nat = \"4s\"\nkind = \"bandwidth\"\nbandwidth = \"64KiB\"\n\
         [[faults]]\nat = \"6s\"\nkind = \"blackhole\"\n[[faults]]\nat = \"8s\"\nkind = \"reset\"\n"
    );
    let s = parse(&ok, Path::new("s.toml")).unwrap();
    let plan = crate::plan::Plan::compile(&s).unwrap();
    assert!(plan.needs_proxy());
    assert!(plan
        .faults
        .iter()
        .all(|f| matches!(f.action, crate::faults::Action::Network { .. })));
    assert_eq!(
        s.faults[0].direction,
        crate::target::proxy::Direction::ToClient
    );
    assert_eq!(s.faults[0].jitter, Duration::from_millis(10));
    assert_eq!(s.faults[1].bandwidth.map(|b| b.0), Some(64 * 1024));

    let no_bandwidth = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"bandwidth\"\n");
    let e = error_of(&no_bandwidth);
    assert_eq!(e.key, "faults[0].bandwidth");
    assert!(e.message.contains("bytes per second"), "{}", e.message);
    let zero_delay = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"latency\"\ndelay = \"0s\"\n");
    assert_eq!(error_of(&zero_delay).key, "faults[0].delay");
    let leader = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"blackhole\"\nleader = true\n");
    assert_eq!(error_of(&leader).key, "faults[0].leader");
    let bad_way = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"reset\"\ndirection = \"up\"\n");
    assert!(error_of(&bad_way).message.contains("to_server"));
}

#[test]
fn faults_of_one_kind_on_one_target_may_not_overlap() {
    let base = "[load]\nrate = 1\nduration = \"30s\"\n";
    let fault = |at: &str, kind: &str, extra: &str| {
        format!("[[faults]]\nat = \"{at}\"\nkind = \"{kind}\"\nduration = \"5s\"\n{extra}")
    };
    let overlapping = format!(
        "{base}{}{}",
        fault("2s", "blackhole", ""),
        fault("6s", "blackhole", "direction = \"to_client\"\n")
    );
    let e = error_of(&overlapping);
    assert_eq!(e.key, "faults[1].at");
    assert!(e.message.contains("overlaps faults[0]"), "{}", e.message);
    let after = format!(
        "{base}{}{}",
        fault("2s", "blackhole", ""),
        fault("7s", "blackhole", "")
    );
    assert!(parse(&after, Path::new("s.toml")).is_ok());
    let other_kinds = format!(
        "{base}{}{}",
        fault("2s", "blackhole", ""),
        fault("3s", "latency", "")
    );
    assert!(parse(&other_kinds, Path::new("s.toml")).is_ok());
    let other_nodes = format!(
        "[target]\nnodes = 3\n{base}{}{}",
        fault("2s", "pause", "node = 0\n"),
        fault("3s", "pause", "node = 1\n")
    );
    assert!(parse(&other_nodes, Path::new("s.toml")).is_ok());
}

fn external(target: &str) -> String {
    format!("[target]\nurl = \"nats://127.0.0.1:4222\"\n{target}\n{MINIMAL}")
}

#[test]
fn one_way_to_log_in() {
    let e = error_of(&external("token = \"t\"\nuser = \"u\"\npassword = \"p\""));
    assert_eq!(e.key, "target.token");
    assert!(e.message.contains("keep one"), "{}", e.message);
    let e = error_of(&format!(
        "[target]\nurl = \"nats://alice:s3cret@127.0.0.1:4222\"\nuser = \"u\"\npassword = \"p\"\n{MINIMAL}"
    ));
    assert_eq!(e.key, "target.url");
    assert!(
        e.message
            .contains("in the URL and in target.user/target.password"),
        "{}",
        e.message
    );
    assert!(!e.to_string().contains("s3cret"), "{e}");
    let e = error_of(&format!(
        "[target]\nurl = \"nats://t0k3n@127.0.0.1:4222\"\ntoken = \"x\"\n{MINIMAL}"
    ));
    assert_eq!(e.key, "target.url");
    assert!(parse(
        &format!("[target]\nurl = \"nats://alice:s3cret@127.0.0.1:4222\"\n{MINIMAL}"),
        Path::new("s.toml")
    )
    .is_ok());
}

#[test]
fn a_malformed_url_is_a_scenario_error() {
    let e = error_of(&format!(
        "[target]\nurl = \"nats://host:notaport\"\n{MINIMAL}"
    ));
    assert_eq!((e.line, e.key.as_str()), (2, "target.url"));
    assert!(e.message.contains("invalid port"), "{}", e.message);
}

#[test]
fn tls_and_credentials_files_must_exist_whatever_the_scheme() {
    for key in ["ca_file", "cert_file", "key_file"] {
        let e = error_of(&external(&format!(
            "[target.tls]\n{key} = \"/nonexistent/{key}.pem\""
        )));
        assert_eq!(e.key, format!("target.tls.{key}"));
        assert!(
            e.message.contains("/nonexistent/") && e.message.contains("existing file"),
            "{}",
            e.message
        );
    }
    let e = error_of(&external("credentials = \"/nonexistent/user.creds\""));
    assert_eq!(e.key, "target.credentials");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "pem").unwrap();
    let e = error_of(&external(&format!(
        "[target.tls]\ncert_file = \"{}\"",
        cert.display()
    )));
    assert_eq!(e.key, "target.tls.cert_file");
    assert!(e.message.contains("together"), "{}", e.message);
    let ok = external(&format!(
        "[target.tls]\nca_file = \"{0}\"\ncert_file = \"{0}\"\nkey_file = \"{0}\"",
        cert.display()
    ));
    assert!(parse(&ok, Path::new("s.toml")).is_ok());
}

#[test]
fn an_external_consumer_takes_no_consumer_faults() {
    let base = "[load]\nrate = 1\nduration = \"10s\"\n[consumer]\nmode = \"external\"\n";
    let s = parse(base, Path::new("s.toml")).unwrap();
    assert_eq!(s.consumer.mode, crate::scenario::ConsumerMode::External);
    for kind in ["consumer_crash", "consumer_stall", "consumer_slow"] {
        let faulty = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"{kind}\"\n");
        let e = error_of(&faulty);
        assert_eq!((e.line, e.key.as_str()), (8, "faults[0].kind"), "{kind}");
        assert!(e.message.contains("external"), "{}", e.message);
    }
    let network = format!("{base}[[faults]]\nat = \"2s\"\nkind = \"reset\"\n");
    assert!(parse(&network, Path::new("s.toml")).is_ok());
    let unknown = "[consumer]\nmode = \"remote\"\n";
    let e = error_of(unknown);
    assert_eq!((e.line, e.key.as_str()), (2, "consumer.mode"));
}
