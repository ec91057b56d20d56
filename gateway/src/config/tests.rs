//! Tests of the configuration: defaults, files, flags and their precedence.

use std::time::Duration;

use super::*;

#[test]
fn defaults_are_the_embedded_layout() {
    let config = ServerConfig::load(&ServerArgs::default()).unwrap();
    assert_eq!(config.geometry.data_shards, 4);
    assert_eq!(config.geometry.parity_shards, 2);
    assert_eq!(config.shard_dirs.len(), 6);
    assert_eq!(config.write_quorum, 5);
    assert!(config.fsync);
    assert_eq!(config.listen.port(), 9000);
    assert!(config.tls.is_none());
}

#[test]
fn tls_needs_both_files_and_a_distinct_address() {
    let args = ServerArgs {
        tls_cert: Some("cert.pem".into()),
        ..Default::default()
    };
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("tls_key"), "{err}");
    let args = ServerArgs {
        tls_listen: Some("127.0.0.1:9443".parse().unwrap()),
        ..Default::default()
    };
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("tls_listen"), "{err}");
    let args = ServerArgs {
        tls_cert: Some("cert.pem".into()),
        tls_key: Some("key.pem".into()),
        tls_listen: Some("127.0.0.1:9000".parse().unwrap()),
        ..Default::default()
    };
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("tls_listen"), "{err}");
    let args = ServerArgs {
        tls_cert: Some("cert.pem".into()),
        tls_key: Some("key.pem".into()),
        ..Default::default()
    };
    let tls = ServerConfig::load(&args).unwrap().tls.unwrap();
    assert_eq!(tls.listen, None);
    assert_eq!(tls.handshake_timeout, Duration::from_secs(10));
}

#[test]
fn bad_values_name_their_field() {
    let args = ServerArgs {
        data_shards: Some(0),
        ..Default::default()
    };
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("data_shards"), "{err}");
    let args = ServerArgs {
        shard_dirs: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("shard_dirs"), "{err}");
    let args = ServerArgs {
        write_quorum: Some(7),
        ..Default::default()
    };
    assert!(ServerConfig::load(&args)
        .unwrap_err()
        .to_string()
        .contains("write_quorum"));
}

#[test]
fn file_values_apply_and_unknown_fields_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.toml");
    std::fs::write(
        &path,
        "data_shards = 3\nparity_shards = 1\nlisten = \"127.0.0.1:9100\"\n",
    )
    .unwrap();
    let args = ServerArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    let config = ServerConfig::load(&args).unwrap();
    assert_eq!(config.geometry.total_shards(), 4);
    assert_eq!(config.listen.port(), 9100);
    std::fs::write(
        &path,
        "scrub_bytes_per_sec = 1048576\nscrub_interval_secs = 60\nscrub_poll_ms = 500\n",
    )
    .unwrap();
    let config = ServerConfig::load(&args).unwrap();
    assert_eq!(config.scrub.bytes_per_sec, 1 << 20);
    assert_eq!(config.scrub.pass_interval, Duration::from_secs(60));
    assert_eq!(config.scrub_poll_interval, Duration::from_millis(500));
    assert!(!config.metrics_access.public);
    for (text, field) in [
        ("scrub_bytes_per_sec = 10\n", "scrub_bytes_per_sec"),
        ("scrub_poll_ms = 1\n", "scrub_poll_ms"),
        ("scrub_file_pause_ms = 999999\n", "scrub_file_pause_ms"),
        ("metrics_bearer_token = \"short\"\n", "metrics_bearer_token"),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = ServerConfig::load(&args).unwrap_err().to_string();
        assert!(err.contains(field), "{text}: {err}");
    }
    std::fs::write(
        &path,
        "node_lost_after_secs = 5\nscan_interval_secs = 2\nrepair_bytes_per_sec = 0\nrepair_busy_bytes_per_sec = 4096\n",
    )
    .unwrap();
    let config = ServerConfig::load(&args).unwrap();
    assert_eq!(config.healing.node_lost_after, Duration::from_secs(5));
    assert_eq!(config.healing.scan_interval, Duration::from_secs(2));
    assert_eq!(config.healing.repair_bytes_per_sec, 0);
    assert_eq!(config.healing.repair_busy_bytes_per_sec, 4096);
    std::fs::write(&path, "repair_parallelism = 0\n").unwrap();
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("repair_parallelism"), "{err}");
    std::fs::write(&path, "stale_intent_secs = 5\n").unwrap();
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("stale_intent_secs"), "{err}");
    std::fs::write(&path, "data_shardz = 3\n").unwrap();
    assert!(matches!(
        ServerConfig::load(&args),
        Err(ConfigError::Parse { .. })
    ));
}

#[test]
fn virtual_host_domains_from_file_or_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.toml");
    std::fs::write(&path, "domain = \"S3.Localhost.\"\n").unwrap();
    let mut args = ServerArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    assert_eq!(
        ServerConfig::load(&args).unwrap().domains,
        vec!["s3.localhost"]
    );
    args.domains = vec!["a.example".into(), "b.example".into()];
    assert_eq!(
        ServerConfig::load(&args).unwrap().domains,
        vec!["a.example", "b.example"]
    );
    args.domains = vec!["bad_domain".into()];
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("domains"), "{err}");
    assert!(ServerConfig::load(&ServerArgs::default())
        .unwrap()
        .domains
        .is_empty());
}

#[test]
fn a_flag_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.toml");
    std::fs::write(
        &path,
        "shard_timeout_secs = 7\nhedge_after_ms = 40\nmax_clock_skew_secs = 60\n",
    )
    .unwrap();
    let defaults = ServerConfig::load(&ServerArgs::default()).unwrap();
    assert_eq!(defaults.shard_timeout, Duration::from_secs(30));
    assert_eq!(defaults.hedge_after, Duration::from_millis(300));
    assert_eq!(defaults.max_clock_skew, Duration::from_secs(900));
    assert_eq!(
        defaults.max_presign_expiry,
        Duration::from_secs(7 * 24 * 3600)
    );
    let mut args = ServerArgs {
        config: Some(path),
        ..Default::default()
    };
    let from_file = ServerConfig::load(&args).unwrap();
    assert_eq!(from_file.shard_timeout, Duration::from_secs(7));
    assert_eq!(from_file.hedge_after, Duration::from_millis(40));
    assert_eq!(from_file.max_clock_skew, Duration::from_secs(60));
    args.settings.shard_timeout_secs = Some(9);
    args.settings.max_presign_expiry_secs = Some(3600);
    let from_flag = ServerConfig::load(&args).unwrap();
    assert_eq!(from_flag.shard_timeout, Duration::from_secs(9));
    assert_eq!(from_flag.hedge_after, Duration::from_millis(40));
    assert_eq!(from_flag.max_presign_expiry, Duration::from_secs(3600));
    args.settings.max_presign_expiry_secs = Some(8 * 24 * 3600);
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("max_presign_expiry_secs"), "{err}");
}

#[test]
fn every_table_setting_has_a_flag_and_a_variable() {
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    #[allow(dead_code)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }
    let command = Cli::command();
    for name in [
        "shard-timeout-secs",
        "hedge-after-ms",
        "max-clock-skew-secs",
        "gc-delay-secs",
    ] {
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(name))
            .unwrap_or_else(|| panic!("no --{name}"));
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("--{name} has no variable"));
        let expected = format!("STRATA_{}", name.replace('-', "_").to_ascii_uppercase());
        assert_eq!(env.to_str(), Some(expected.as_str()));
    }
}

#[test]
fn catalog_backups_are_scheduled_from_the_file_and_keep_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.toml");
    std::fs::write(
        &path,
        "catalog_backup_interval_secs = 600\ncatalog_backups_kept = 5\n",
    )
    .unwrap();
    let args = ServerArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    let config = ServerConfig::load(&args).unwrap();
    assert_eq!(
        config.healing.catalog_backup_interval,
        Duration::from_secs(600)
    );
    assert_eq!(config.healing.catalog_backups_kept, 5);
    let defaults = ServerConfig::load(&ServerArgs::default()).unwrap();
    assert_eq!(
        defaults.healing.catalog_backup_interval,
        Duration::from_secs(3600)
    );
    std::fs::write(&path, "catalog_backups_kept = 0\n").unwrap();
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("catalog_backups_kept"), "{err}");
}

#[test]
fn client_limits_have_defaults_come_from_the_file_and_are_checked() {
    let defaults = ServerConfig::load(&ServerArgs::default()).unwrap().limits;
    let expected = ClientLimits::default();
    assert_eq!(defaults.header_read_timeout, expected.header_read_timeout);
    assert_eq!(defaults.body_idle_timeout, expected.body_idle_timeout);
    assert_eq!(defaults.request_timeout, expected.request_timeout);
    assert_eq!(defaults.max_connections, expected.max_connections);
    assert_eq!(defaults.max_inflight_bodies, expected.max_inflight_bodies);
    assert_eq!(defaults.max_header_count, expected.max_header_count);
    assert_eq!(defaults.max_header_bytes, expected.max_header_bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.toml");
    std::fs::write(
        &path,
        "header_read_timeout_ms = 1500\nbody_idle_timeout_ms = 2500\nrequest_timeout_secs = 7\n\
         max_connections = 10\nmax_inflight_bodies = 3\nmax_header_count = 50\n\
         max_header_bytes = 10000\n",
    )
    .unwrap();
    let mut args = ServerArgs {
        config: Some(path),
        ..Default::default()
    };
    let limits = ServerConfig::load(&args).unwrap().limits;
    assert_eq!(limits.header_read_timeout, Duration::from_millis(1500));
    assert_eq!(limits.body_idle_timeout, Duration::from_millis(2500));
    assert_eq!(limits.request_timeout, Duration::from_secs(7));
    assert_eq!(limits.max_connections, 10);
    assert_eq!(limits.max_inflight_bodies, 3);
    assert_eq!(limits.max_header_count, 50);
    assert_eq!(limits.max_header_bytes, 10000);
    args.settings.max_connections = Some(0);
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("max_connections"), "{err}");
    args.settings.max_connections = None;
    args.settings.header_read_timeout_ms = Some(0);
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("header_read_timeout_ms"), "{err}");
    args.settings.header_read_timeout_ms = None;
    args.settings.max_header_bytes = Some(100);
    let err = ServerConfig::load(&args).unwrap_err().to_string();
    assert!(err.contains("max_header_bytes"), "{err}");
}

#[test]
fn node_tls_settings_are_checked_when_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let nodes: String = (0..6)
        .map(|i| {
            format!(
                "[[nodes]]\nid = {i}\naddress = \"https://127.0.0.1:{}\"\n",
                7100 + i
            )
        })
        .collect();
    let base = format!(
        "data = {:?}\ncluster_secret = \"0123456789abcdef0123\"\n",
        dir.path().join("data")
    );
    let args = ServerArgs {
        config: Some(path.clone()),
        ..Default::default()
    };
    let load = |extra: &str| {
        std::fs::write(&path, format!("{base}{extra}\n{nodes}")).unwrap();
        ServerConfig::load_gateway(&args)
    };
    // https:// addresses are accepted; without a CA there is no TLS client (the node stores
    // refuse https addresses when they are built, naming node_tls_ca).
    let config = load("").unwrap();
    let cluster = config.cluster.unwrap();
    assert!(cluster.node_tls.is_none());
    assert!(cluster.nodes[0].address.starts_with("https://"));
    let missing = dir.path().join("missing-ca.pem");
    for (extra, field) in [
        (format!("node_tls_ca = {missing:?}"), "node_tls_ca"),
        (
            "node_tls_server_name = \"node.example\"".to_string(),
            "node_tls_server_name",
        ),
    ] {
        let err = load(&extra).unwrap_err();
        assert!(err.to_string().contains(field), "{extra}: {err}");
    }
    std::fs::write(dir.path().join("not-pem.pem"), "hello").unwrap();
    let not_pem = dir.path().join("not-pem.pem");
    let err = load(&format!("node_tls_ca = {not_pem:?}")).unwrap_err();
    assert!(err.to_string().contains("node_tls_ca"), "{err}");
}
