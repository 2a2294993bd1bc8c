use std::time::Duration;

use super::*;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_toml(text, "test.toml", env(vars))
}

fn key_of(text: &str, vars: &[(&str, &str)]) -> String {
    match load(text, vars) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

const FULL: &str = r#"
listen = "127.0.0.1:9000"
store = "memory:"
admin_key_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
health_check_interval = "5s"
health_check_timeout = "2s"
queue_ahead = 1

[shutdown]
mode = "drain"
drain_timeout = "2m"

[fleet]
lease_ttl = "1500ms"

[strategy]
preset = "development"
cooldown = "45s"
all_blocked = "fail_fast"

[[servers]]
id = "gpu-1"
url = "http://10.0.0.5:8188"
auth = { bearer = "t0ken-secret" }
max_concurrent = 2
tags = ["sdxl"]

[[servers]]
id = "gpu-2"
url = "https://gpu-2.internal/comfy"
auth = { basic = { user = "ops", password = "pa55word" } }

[[tenants]]
name = "team-a"
keys = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
submissions_per_second = 2.5

[limits]
body_bytes = 65536
queued_per_tenant = 50

[webhooks]
secret = "a-signing-secret-of-some-length"
allowed_hosts = ["hooks.example.com", "*.internal.example.com", "127.0.0.1"]

[outputs]
mode = "copy"
dir = "/var/lib/comfy-pool/outputs"
"#;

#[test]
fn a_full_file_is_read_with_presets_and_overrides() {
    let config = load(FULL, &[]).unwrap();
    assert_eq!(config.listen.port(), 9000);
    assert_eq!(config.health_check_interval, Duration::from_secs(5));
    assert_eq!(config.health_check_timeout, Duration::from_secs(2));
    assert_eq!(config.queue_ahead, 1);
    assert_eq!(config.shutdown.mode, ShutdownAction::Drain);
    assert_eq!(config.shutdown.drain_timeout, Duration::from_secs(120));
    assert_eq!(config.fleet.lease_ttl, Duration::from_millis(1500));
    let smart = config.strategy.smart_config();
    assert_eq!(smart.cooldown, Duration::from_secs(45));
    assert_eq!(
        smart.max_failures_before_block, 3,
        "from the development preset"
    );
    assert_eq!(smart.all_blocked, AllBlockedPolicy::FailFast);
    assert_eq!(config.servers[0].max_concurrent, 2);
    assert_eq!(
        config.servers[1].auth,
        Some(ServerAuth::Basic {
            user: "ops".into(),
            password: Secret::new("pa55word")
        })
    );
    assert_eq!(config.tenant("team-a").unwrap().keys, [HASH]);
    assert_eq!(config.limits.body_bytes, 65536);
    assert_eq!(config.limits.burst, 20, "default");
    assert_eq!(config.outputs.mode, OutputMode::Copy);
}

#[test]
fn debug_output_shows_no_credential() {
    let config = load(FULL, &[("COMFY_POOL__ADMIN_KEY", "x")]).err();
    assert!(
        config.is_some(),
        "admin_key and its hash together are refused"
    );
    let config = load(FULL, &[]).unwrap();
    let shown = format!("{config:?}");
    for secret in ["t0ken-secret", "pa55word", "a-signing-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn environment_variables_override_keys_at_any_depth() {
    let config = load(
        FULL,
        &[
            ("COMFY_POOL__LISTEN", "0.0.0.0:7000"),
            ("COMFY_POOL__LIMITS__BODY_BYTES", "2048"),
            ("COMFY_POOL__SERVERS__0__AUTH__BEARER", "12345"),
            ("COMFY_POOL__WEBHOOKS__ALLOWED_HOSTS", r#"["a.example"]"#),
            ("COMFY_POOL_TEST_PG_URL", "not ours: one underscore"),
        ],
    )
    .unwrap();
    assert_eq!(config.listen.port(), 7000);
    assert_eq!(config.limits.body_bytes, 2048);
    assert_eq!(
        config.servers[0].auth,
        Some(ServerAuth::Bearer(Secret::new("12345"))),
        "a value replacing a string stays a string"
    );
    assert_eq!(config.webhooks.allowed_hosts, ["a.example"]);
}

#[test]
fn errors_name_the_key() {
    let admin = "admin_key = \"an-admin-key-long-enough\"\n";
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("listen = \"nowhere\"", &[], "listen"),
        ("[limits]\nbody_bytes = \"big\"", &[], "limits.body_bytes"),
        ("[limits]\nbody_bytes = 10", &[], "limits.body_bytes"),
        (
            "[limits]\nsubmission_rate = 1",
            &[],
            "limits.submission_rate",
        ),
        (
            "[[servers]]\nid = \"a\"\nurl = \"http://h:1\"\n[[servers]]\nid = \"b\"\nurl = \"ftp://h\"",
            &[],
            "servers[1].url",
        ),
        (
            "[[servers]]\nid = \"a\"\nurl = \"http://h:1\"\n[[servers]]\nid = \"a\"\nurl = \"http://h:2\"",
            &[],
            "servers[1].id",
        ),
        (
            "[[servers]]\nid = \"a\"\nurl = \"http://h:1\"\nmax_concurrent = 0",
            &[],
            "servers[0].max_concurrent",
        ),
        ("[strategy]\njitter = 3.0", &[], "strategy.jitter"),
        ("[strategy]\ncooldown = \"soon\"", &[], "strategy.cooldown"),
        ("[[tenants]]\nname = \"a b\"", &[], "tenants[0].name"),
        (
            "[[tenants]]\nname = \"a\"\nkeys = [\"abc\"]",
            &[],
            "tenants[0].keys[0]",
        ),
        (
            "[webhooks]\nallowed_hosts = [\"h\"]",
            &[],
            "webhooks.secret",
        ),
        (
            "[webhooks]\nsecret = \"0123456789abcdef\"\nallowed_hosts = [\"http://h/\"]",
            &[],
            "webhooks.allowed_hosts[0]",
        ),
        ("[outputs]\nmode = \"copy\"", &[], "outputs.dir"),
        ("[fleet]\nlease_ttl = \"10ms\"", &[], "fleet.lease_ttl"),
        ("[fleet]\nlease = \"10s\"", &[], "fleet.lease"),
        ("store = \"mysql://x\"", &[], "store"),
        ("", &[("COMFY_POOL__LIMITS__BURST", "0")], "limits.burst"),
    ];
    for (text, vars, key) in cases {
        assert_eq!(key_of(&format!("{admin}{text}"), vars), *key, "{text}");
    }
    assert_eq!(key_of("", &[]), "admin_key", "the admin key is required");
}

#[test]
fn a_store_url_with_a_password_is_never_quoted() {
    let text = "admin_key = \"an-admin-key-long-enough\"\nstore = \"mysql://u:pw-secret@h/db\"";
    let message = load(text, &[]).unwrap_err().to_string();
    assert!(
        message.contains("store") && !message.contains("pw-secret"),
        "{message}"
    );
}

#[test]
fn environment_variables_that_name_nothing_are_refused() {
    let err = load("", &[("COMFY_POOL__", "x")]).unwrap_err();
    assert!(matches!(err, ConfigError::Env { .. }), "{err}");
    let err = load(
        "admin_key = \"an-admin-key-long-enough\"\n[[servers]]\nid = \"a\"\nurl = \"http://h\"",
        &[("COMFY_POOL__SERVERS__3__URL", "http://h")],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Env { .. }), "{err}");
}

#[test]
fn a_syntax_error_names_the_file_and_line() {
    let err = load("listen = ", &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("test.toml: ") && text.contains("line 1"),
        "{text}"
    );
}
