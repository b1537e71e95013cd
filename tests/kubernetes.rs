//! The Kubernetes manifests in deploy/kubernetes/, checked offline (no
//! cluster is reachable here): every document against the Kubernetes API
//! schemas (scripts/kubernetes/validate.mjs, installed by
//! `scripts/install-tools.sh --with-kubernetes`), then what the schemas
//! cannot know: the Job is one shard per index, never retried late; its
//! command line is one the harness accepts; its scenario is valid for
//! every shard.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::Parser;
use harness::cli::{Cli, Command as Sub};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validate(files: &[PathBuf]) -> Output {
    let script = repo().join(".tools/kubernetes/validate.mjs");
    Command::new("node")
        .arg(&script)
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!("node is needed, and scripts/install-tools.sh --with-kubernetes: {e}")
        })
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every manifest, validated, as (kind, name) → object.
fn documents() -> Vec<Value> {
    let files = manifests();
    assert!(files.len() >= 5, "{files:?}");
    let output = validate(&files);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checked: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    checked.into_iter().map(|c| c["object"].clone()).collect()
}

fn find<'a>(documents: &'a [Value], kind: &str, name: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_validator_refuses_a_manifest_the_api_server_would() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\nspec:\n  completions: three\n  \
         template:\n    spec:\n      containers:\n        - name: a\n          image: b\n",
    )
    .unwrap();
    let output = validate(&[broken]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("broken.yaml: Job x") && stderr.contains("completions"),
        "{stderr}"
    );
}

/// `$(NAME)` replaced as Kubernetes does, from `values`.
fn expand(arg: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(arg.to_string(), |arg, (name, value)| {
        arg.replace(&format!("$({name})"), value)
    })
}

#[test]
fn the_shards_are_an_indexed_job_whose_command_the_harness_accepts() {
    let documents = documents();
    let job = find(&documents, "Job", "harness-shards");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["backoffLimitPerIndex"], 0);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    let container = &spec["template"]["spec"]["containers"][0];
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(env.contains(&"JOB_COMPLETION_INDEX"), "{env:?}");
    let index_from = &container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"];
    assert_eq!(
        index_from,
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );

    let run = &find(&documents, "ConfigMap", "harness-run")["data"];
    let values = [
        ("JOB_COMPLETION_INDEX", "2"),
        ("RUN_ID", run["run-id"].as_str().unwrap()),
        ("START_AT", run["start-at"].as_str().unwrap()),
    ];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| expand(a.as_str().unwrap(), &values))
        .collect();
    let cli = Cli::try_parse_from(std::iter::once("harness".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("{e}"));
    let Sub::Run(run_args) = cli.command else {
        panic!("not `harness run`");
    };
    let shard = run_args.shard.expect("--shard");
    assert_eq!(shard.index, 2);
    // As many shards as the Job has indexes, all running at once.
    assert_eq!(spec["completions"], shard.count);
    assert_eq!(spec["parallelism"], shard.count);
    assert!(run_args.start_at.is_some() && run_args.run_id.is_some());
    assert_eq!(
        run_args.report_json.unwrap(),
        PathBuf::from(format!("/reports/{}-shard-2.json", values[1].1))
    );

    // Every shard of the shipped scenario is valid as the shard runs it.
    let scenario = find(&documents, "ConfigMap", "harness-scenario")["data"]["scenario.toml"]
        .as_str()
        .unwrap();
    let whole = harness::scenario::parse(scenario, Path::new("scenario.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for index in 0..shard.count {
        let mut mine = whole.clone();
        harness::shard::Shard {
            index,
            count: shard.count,
        }
        .apply(&mut mine)
        .unwrap_or_else(|e| panic!("{e}"));
        harness::scenario::validate(&mine).unwrap_or_else(|e| panic!("{e:?}"));
    }

    // The merge reads the shards' reports from the same volume.
    let merge = find(&documents, "Job", "harness-merge");
    let script = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
        .as_str()
        .unwrap();
    assert!(
        script.contains("harness merge /reports/\"$RUN_ID\"-shard-*.json"),
        "{script}"
    );
    let claim = |job: &Value| {
        job["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
            .map(str::to_string)
    };
    assert_eq!(claim(job), claim(merge));
    find(&documents, "PersistentVolumeClaim", "harness-reports");
}
