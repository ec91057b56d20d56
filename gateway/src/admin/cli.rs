//! `strata admin <cluster|repair|scrub|gc|backup> status`, `strata admin backup` and
//! `strata admin <user|key|policy> <create|list|delete|enable|disable|attach> [NAME]`: a client
//! of the admin API of a running gateway. Each call is one SigV4-signed request to
//! `/_strata/admin/<topic>` (`POST` for `backup` without an action, which makes a backup; `GET`
//! otherwise), signed by `s3::auth::sign_request` (the same canonical request the server
//! verifies), answered as JSON and printed as readable tables, or verbatim with `--json`.
//! `strata admin restore-catalog --config FILE [--force]` is the exception: it runs offline,
//! with the gateway stopped, and talks to the storage nodes itself (`super::restore`).
//!
//! Credentials, first found wins: `--access-key`/`--secret-key`; with `--data DIR`, what the
//! embedded server there uses (`STRATA_ACCESS_KEY`/`STRATA_SECRET_KEY`, else its
//! `credentials.toml`); `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. Endpoint:
//! `--endpoint`, else `STRATA_ENDPOINT`, else `http://127.0.0.1:9000`.
//!
//! Invariants: every call is bounded by `--timeout` (connect, answer and body alike) and reads
//! at most `MAX_ANSWER_BYTES`; failures are one clear line on stderr and exit code 1 —
//! unreachable server, refused credentials (with the S3 error code), or a malformed answer.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::credentials::Credentials;
use crate::s3::auth::{sign_request, EMPTY_SHA256_HEX};

/// Largest admin answer read.
const MAX_ANSWER_BYTES: usize = 16 << 20;
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9000";

/// `strata admin …`
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// What to show or do.
    #[arg(value_enum)]
    pub topic: Topic,
    /// The action: `status` for the cluster topics (without it, `backup` makes a backup and
    /// the others show their status); `create`, `list`, `delete`, `enable`, `disable`,
    /// `attach` for `user`, `key` and `policy`.
    #[arg(value_enum)]
    pub action: Option<Action>,
    /// user/key/policy: the user name, access key id or policy name acted on.
    pub name: Option<String>,
    /// user create, user attach: a policy to attach (repeat for several; built-ins:
    /// readwrite, readonly, writeonly).
    #[arg(long = "policy")]
    pub policies: Vec<String>,
    /// key list: only this user's keys.
    #[arg(long)]
    pub user: Option<String>,
    /// policy create: the file holding the policy document (JSON).
    #[arg(long)]
    pub document: Option<PathBuf>,
    /// restore-catalog: the stopped gateway's (or embedded server's) configuration file; an
    /// embedded server run without one is named by --data.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// restore-catalog: replace a non-empty catalog directory (it is moved aside, not deleted).
    #[arg(long)]
    pub force: bool,
    /// Gateway URL (else STRATA_ENDPOINT, else http://127.0.0.1:9000).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Access key (else --data's credentials.toml, else AWS_ACCESS_KEY_ID).
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key (else --data's credentials.toml, else AWS_SECRET_ACCESS_KEY).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Data directory of an embedded `strata server`: read its credentials.toml (and, for
    /// restore-catalog without --config, restore the server with default settings there).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Print the JSON answer as it came.
    #[arg(long)]
    pub json: bool,
    /// Seconds before giving up on the server.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Topic {
    Cluster,
    Repair,
    Scrub,
    Gc,
    /// Make a catalog backup now (`POST /_strata/admin/backup`).
    Backup,
    /// Offline: restore the catalog from the newest backup on the nodes, then reconcile.
    RestoreCatalog,
    /// Rewrap every SSE-S3 data key under the active master key (after adding a new key to
    /// the master key file and restarting): `POST /_strata/admin/sse-rewrap`.
    SseRewrap,
    /// Users: create (with a first key pair), list, delete, attach policies.
    User,
    /// Access keys: create, list, enable, disable, delete.
    Key,
    /// Named identity policies: create (from --document), list, delete.
    Policy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    Status,
    Create,
    List,
    Delete,
    Enable,
    Disable,
    Attach,
}

/// One admin call: method, path and JSON (or policy) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub body: Vec<u8>,
}

/// The call `strata admin user|key|policy ACTION [NAME]` makes.
pub fn identity_call(args: &AdminArgs) -> Result<Call, String> {
    let need_name = || {
        args.name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| "this command needs a NAME".to_string())
    };
    let json = |value: serde_json::Value| value.to_string().into_bytes();
    let call = |method, path: String, body| Call { method, path, body };
    let action = args.action.unwrap_or(Action::List);
    Ok(match (args.topic, action) {
        (Topic::User, Action::List) => call("GET", "/_strata/admin/users".into(), Vec::new()),
        (Topic::User, Action::Create) => call(
            "POST",
            "/_strata/admin/users".into(),
            json(serde_json::json!({"name": need_name()?, "policies": args.policies})),
        ),
        (Topic::User, Action::Delete) => call(
            "DELETE",
            format!("/_strata/admin/users/{}", need_name()?),
            Vec::new(),
        ),
        (Topic::User, Action::Attach) => call(
            "PUT",
            format!("/_strata/admin/users/{}/policies", need_name()?),
            json(serde_json::json!({"policies": args.policies})),
        ),
        (Topic::Key, Action::List) => call("GET", "/_strata/admin/keys".into(), Vec::new()),
        (Topic::Key, Action::Create) => call(
            "POST",
            "/_strata/admin/keys".into(),
            json(serde_json::json!({"user": need_name()?})),
        ),
        (Topic::Key, Action::Enable | Action::Disable) => call(
            "PUT",
            format!("/_strata/admin/keys/{}", need_name()?),
            json(serde_json::json!({
                "status": if action == Action::Enable { "active" } else { "disabled" }
            })),
        ),
        (Topic::Key, Action::Delete) => call(
            "DELETE",
            format!("/_strata/admin/keys/{}", need_name()?),
            Vec::new(),
        ),
        (Topic::Policy, Action::List) => call("GET", "/_strata/admin/policies".into(), Vec::new()),
        (Topic::Policy, Action::Create) => {
            let file = args
                .document
                .as_ref()
                .ok_or("policy create needs --document FILE")?;
            let body =
                std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            call(
                "PUT",
                format!("/_strata/admin/policies/{}", need_name()?),
                body,
            )
        }
        (Topic::Policy, Action::Delete) => call(
            "DELETE",
            format!("/_strata/admin/policies/{}", need_name()?),
            Vec::new(),
        ),
        (topic, action) => return Err(format!("{topic:?} has no action {action:?}",)),
    })
}

impl Topic {
    fn path(self) -> &'static str {
        match self {
            Topic::Cluster => "/_strata/admin/cluster",
            Topic::Repair => "/_strata/admin/repair",
            Topic::Scrub => "/_strata/admin/scrub",
            Topic::Gc => "/_strata/admin/gc",
            Topic::Backup => "/_strata/admin/backup",
            Topic::RestoreCatalog | Topic::User | Topic::Key | Topic::Policy => "",
            Topic::SseRewrap => "/_strata/admin/sse-rewrap",
        }
    }

    /// `POST` for `backup` without an action (make one), else `GET` (status).
    fn method(self, action: Option<Action>) -> &'static str {
        match (self, action) {
            (Topic::Backup, None) | (Topic::SseRewrap, _) => "POST",
            _ => "GET",
        }
    }
}

/// Runs the command; returns the process exit code.
pub fn run(args: AdminArgs) -> i32 {
    if args.topic == Topic::RestoreCatalog {
        return super::restore::run(
            args.config.as_deref(),
            args.data.as_deref(),
            args.force,
            args.json,
        );
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("strata admin: cannot start the runtime: {err}");
            return 1;
        }
    };
    match runtime
        .block_on(fetch(&args))
        .and_then(|answer| only_users_keys(&args, answer))
    {
        Ok(answer) => {
            if args.json {
                println!("{answer}");
            } else {
                print!("{}", render_topic(args.topic, &answer, now_ms()));
            }
            0
        }
        Err(message) => {
            eprintln!("strata admin: {message}");
            1
        }
    }
}

/// `key list --user NAME`: the keys of that user only.
fn only_users_keys(args: &AdminArgs, answer: String) -> Result<String, String> {
    let (Topic::Key, Some(user)) = (args.topic, &args.user) else {
        return Ok(answer);
    };
    let mut keys: Vec<Value> = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
    keys.retain(|key| key.get("user").and_then(Value::as_str) == Some(user.as_str()));
    serde_json::to_string_pretty(&keys).map_err(|e| e.to_string())
}

/// The access and secret key to sign with.
fn credentials(args: &AdminArgs) -> Result<(String, String), String> {
    if let (Some(access), Some(secret)) = (&args.access_key, &args.secret_key) {
        return Ok((access.clone(), secret.clone()));
    }
    if let Some(dir) = &args.data {
        let stored = Credentials::effective(dir).map_err(|err| {
            format!(
                "cannot read the credentials in {} (and STRATA_ACCESS_KEY/STRATA_SECRET_KEY are not set): {err}",
                dir.display()
            )
        })?;
        return Ok((stored.access_key, stored.secret_key));
    }
    let from_env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    match (
        args.access_key.clone().or_else(|| from_env("AWS_ACCESS_KEY_ID")),
        args.secret_key
            .clone()
            .or_else(|| from_env("AWS_SECRET_ACCESS_KEY")),
    ) {
        (Some(access), Some(secret)) => Ok((access, secret)),
        _ => Err("no credentials: pass --access-key and --secret-key, --data DIR, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()),
    }
}

/// `(authority, base URL)` of the endpoint.
fn endpoint(args: &AdminArgs) -> Result<(String, String), String> {
    let raw = args
        .endpoint
        .clone()
        .or_else(|| {
            std::env::var("STRATA_ENDPOINT")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let trimmed = raw.trim_end_matches('/');
    let authority = match trimmed.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "endpoint {raw}: only http:// is supported by strata admin, not {scheme}://"
            ))
        }
        None => trimmed,
    };
    if authority.is_empty() || authority.contains('/') {
        return Err(format!(
            "endpoint {raw} is not of the form http://host:port"
        ));
    }
    Ok((authority.to_string(), format!("http://{authority}")))
}

/// Fetches the topic's JSON (pretty-printed).
async fn fetch(args: &AdminArgs) -> Result<String, String> {
    let call = match args.topic {
        Topic::User | Topic::Key | Topic::Policy => identity_call(args)?,
        topic => Call {
            method: topic.method(args.action),
            path: topic.path().to_string(),
            body: Vec::new(),
        },
    };
    let (access, secret) = credentials(args)?;
    let (authority, base) = endpoint(args)?;
    let path = call.path.as_str();
    let url = format!("{base}{path}");
    let method = call.method;
    let payload_hash = if call.body.is_empty() {
        EMPTY_SHA256_HEX.to_string()
    } else {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&call.body))
    };
    let signed = sign_request(
        method,
        &authority,
        (path, ""),
        &payload_hash,
        (&access, &secret),
        &args.region,
        SystemTime::now(),
    )
    .ok_or("the system clock is before 1970")?;
    let mut request = http::Request::builder()
        .method(method)
        .uri(&url)
        .header(http::header::HOST, &authority);
    for (name, value) in signed {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(call.body)))
        .map_err(|err| format!("bad request for {url}: {err}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Duration::from_secs(args.timeout.max(1));
    let call = async {
        let response = client
            .request(request)
            .await
            .map_err(|err| format!("cannot reach {base}: {}", error_chain(&err)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|err| format!("{base} broke off its answer: {err}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(deadline, call)
        .await
        .map_err(|_| format!("{base} did not answer within {} s", deadline.as_secs()))??;
    if !status.is_success() {
        return Err(refusal(status, &body, &url));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| format!("{url} answered {status} with something that is not JSON: {err}"))?;
    serde_json::to_string_pretty(&value).map_err(|err| err.to_string())
}

/// The message for a non-2xx answer, naming the S3 error code when there is one.
fn refusal(status: http::StatusCode, body: &[u8], url: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text.get(start..)?.find(&format!("</{name}>"))? + start;
        text.get(start..end).map(str::to_owned)
    };
    // The identity calls answer JSON `{"code", "error"}`.
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let json_field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = tag("Code").or_else(|| json_field("code"));
    let message = tag("Message")
        .or_else(|| json_field("error"))
        .unwrap_or_default();
    match code.as_deref() {
        Some("SignatureDoesNotMatch") | Some("InvalidAccessKeyId") | Some("AccessDenied") => {
            format!(
                "the server refused the credentials ({status}, {}: {message})",
                code.unwrap_or_default()
            )
        }
        None if status == http::StatusCode::NOT_FOUND => format!(
            "{url} does not exist on this server (an older version, or not an admin API): {status}"
        ),
        Some(code) => format!("{url} answered {status}: {code}: {message}"),
        None => format!(
            "{url} answered {status}: {}",
            text.chars().take(300).collect::<String>().trim()
        ),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The topic's own table where there is one (cluster, scrub), else the generic rendering.
pub fn render_topic(topic: Topic, answer: &str, now_ms: u64) -> String {
    let Ok(value) = serde_json::from_str::<Value>(answer) else {
        return format!("{answer}\n");
    };
    let table = match topic {
        Topic::Cluster => cluster_table(&value),
        Topic::Scrub => scrub_table(&value, now_ms),
        Topic::Repair
        | Topic::Gc
        | Topic::Backup
        | Topic::RestoreCatalog
        | Topic::SseRewrap
        | Topic::User
        | Topic::Key
        | Topic::Policy => None,
    };
    table.unwrap_or_else(|| render(answer))
}

fn field<'v>(value: &'v Value, path: &[&str]) -> &'v Value {
    path.iter()
        .fold(value, |at, key| at.get(key).unwrap_or(&Value::Null))
}

fn number(value: &Value, path: &[&str]) -> Option<u64> {
    field(value, path).as_u64()
}

/// `1.5 GiB`-style sizes.
fn bytes(value: Option<u64>) -> String {
    let Some(value) = value else {
        return "-".into();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = value as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < units.len() {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{size:.1} {}", units.get(unit).unwrap_or(&"B"))
    }
}

/// `45s`, `3m`, `2h`, `4d`.
fn span(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "-".into();
    };
    let seconds = ms / 1000;
    match seconds {
        0 if ms > 0 => format!("{ms}ms"),
        0..=119 => format!("{seconds}s"),
        120..=7199 => format!("{}m", seconds / 60),
        7200..=172_799 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

fn ago(at_ms: Option<u64>, now_ms: u64) -> String {
    match at_ms {
        Some(at) if at > 0 => format!("{} ago", span(Some(now_ms.saturating_sub(at)))),
        _ => "never".into(),
    }
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let columns: Vec<String> = header.iter().map(|name| (*name).to_string()).collect();
    let mut out = String::new();
    write_rows(&columns, &rows, "", &mut out);
    out
}

fn cluster_table(value: &Value) -> Option<String> {
    let nodes = field(value, &["nodes"]).as_array()?;
    let mut out = format!(
        "{}+{} erasure coding, write quorum {}, {} of {} nodes up\n\n",
        number(value, &["data_shards"])?,
        number(value, &["parity_shards"])?,
        number(value, &["write_quorum"])?,
        number(value, &["nodes_up"])?,
        nodes.len()
    );
    let rows = nodes
        .iter()
        .map(|node| {
            vec![
                scalar(field(node, &["id"])),
                scalar(field(node, &["name"])),
                scalar(field(node, &["address"])),
                scalar(field(node, &["state"])),
                format!(
                    "{:.1} ms",
                    field(node, &["latency_ms"]).as_f64().unwrap_or(0.0)
                ),
                bytes(number(node, &["free_bytes"])),
                bytes(number(node, &["total_bytes"])),
            ]
        })
        .collect();
    out.push_str(&table(
        &["ID", "NAME", "ADDRESS", "STATE", "LATENCY", "FREE", "TOTAL"],
        rows,
    ));
    // Gateways sharing the catalog (none listed when this one has a catalog of its own).
    let me = scalar(field(value, &["gateway", "id"]));
    let leader = scalar(field(value, &["gateway", "leader_id"]));
    let gateways = field(value, &["gateways"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !gateways.is_empty() {
        let rows = gateways
            .iter()
            .map(|g| {
                let id = scalar(field(g, &["id"]));
                let mut role = Vec::new();
                if id == leader {
                    role.push("leader");
                }
                if id == me {
                    role.push("this gateway");
                }
                vec![
                    id,
                    scalar(field(g, &["address"])),
                    if field(g, &["alive"]).as_bool() == Some(true) {
                        "alive".to_string()
                    } else {
                        "gone".to_string()
                    },
                    role.join(", "),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["GATEWAY", "ADDRESS", "STATE", "ROLE"], rows));
    }
    Some(out)
}

fn scrub_table(value: &Value, now_ms: u64) -> Option<String> {
    let stores = field(value, &["stores_detail"]).as_array()?;
    let mut out = format!(
        "{} of {} stores answering, {} corrupt shards found, {} handed to repair, {} reports pending\n\n",
        number(value, &["stores_reachable"])?,
        number(value, &["stores"])?,
        number(value, &["corrupt_found_total"])?,
        number(value, &["shards_handed_to_repair"])?,
        number(value, &["pending_reports"])?,
    );
    let rows = stores
        .iter()
        .map(|store| {
            let status = field(store, &["status"]);
            let pass = if status.get("running").and_then(Value::as_bool) == Some(true) {
                format!(
                    "running {}: {} files, {}",
                    ago(number(status, &["pass_started_ms"]), now_ms),
                    number(status, &["pass_files_checked"]).unwrap_or(0),
                    bytes(number(status, &["pass_bytes_checked"]))
                )
            } else if status.is_null() {
                scalar(field(store, &["error"]))
            } else if status.get("enabled").and_then(Value::as_bool) == Some(false) {
                "disabled".into()
            } else {
                "idle".into()
            };
            let rate = match number(status, &["bytes_per_sec"]) {
                Some(0) => "unlimited".into(),
                other => format!("{}/s", bytes(other)),
            };
            vec![
                scalar(field(store, &["node"])),
                scalar(field(store, &["name"])),
                pass,
                rate,
                scalar(field(status, &["passes_completed"])),
                ago(number(status, &["last_pass_completed_ms"]), now_ms),
                span(number(status, &["last_pass_duration_ms"])),
                bytes(number(status, &["last_pass_bytes_checked"])),
                scalar(field(status, &["total_corrupt_found"])),
                scalar(field(store, &["pending_reports"])),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "NODE",
            "NAME",
            "PASS",
            "RATE",
            "PASSES",
            "LAST PASS",
            "TOOK",
            "LAST BYTES",
            "CORRUPT",
            "PENDING",
        ],
        rows,
    ));
    Some(out)
}

/// Renders a JSON answer for people: scalars as `key: value` lines, objects as indented
/// sections, arrays of objects as tables whose columns are the scalar fields (nested objects
/// flattened one level as `outer.inner`).
pub fn render(answer: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(answer) else {
        return format!("{answer}\n");
    };
    let mut out = String::new();
    render_object(&value, "", &mut out);
    out
}

fn render_object(value: &Value, indent: &str, out: &mut String) {
    // A list of records (users, keys, policies) is a table.
    if let Value::Array(rows) = value {
        if rows.iter().all(Value::is_object) {
            if rows.is_empty() {
                let _ = writeln!(out, "{indent}(none)");
            } else {
                render_table(rows, indent, out);
            }
            return;
        }
    }
    let Value::Object(map) = value else {
        let _ = writeln!(out, "{indent}{}", scalar(value));
        return;
    };
    for (key, item) in map {
        match item {
            Value::Array(rows) if rows.iter().all(Value::is_object) && !rows.is_empty() => {
                let _ = writeln!(out, "{indent}{key}:");
                render_table(rows, &format!("{indent}  "), out);
            }
            Value::Object(_) => {
                let _ = writeln!(out, "{indent}{key}:");
                render_object(item, &format!("{indent}  "), out);
            }
            other => {
                let _ = writeln!(out, "{indent}{key}: {}", scalar(other));
            }
        }
    }
}

fn render_table(rows: &[Value], indent: &str, out: &mut String) {
    let flat: Vec<Vec<(String, String)>> = rows.iter().map(flatten).collect();
    let mut columns: Vec<String> = Vec::new();
    for row in &flat {
        for (name, _) in row {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        }
    }
    let cells: Vec<Vec<String>> = flat
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|column| {
                    row.iter()
                        .find(|(name, _)| name == column)
                        .map(|(_, value)| value.clone())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    write_rows(&columns, &cells, indent, out);
}

/// Aligned columns: a header line, then one line per row.
fn write_rows(columns: &[String], rows: &[Vec<String>], indent: &str, out: &mut String) {
    let widths: Vec<usize> = (0..columns.len())
        .map(|index| {
            rows.iter()
                .filter_map(|row| row.get(index))
                .chain(columns.get(index))
                .map(|text| text.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(text, &width)| format!("{text:<width$}"))
            .collect();
        format!("{indent}{}", padded.join("  ").trim_end())
    };
    let _ = writeln!(out, "{}", line(columns));
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
}

/// Scalar fields of a row; nested objects one level deep as `outer.inner`; arrays as counts.
fn flatten(row: &Value) -> Vec<(String, String)> {
    let mut cells = Vec::new();
    if let Value::Object(map) = row {
        for (key, value) in map {
            match value {
                Value::Object(inner) => {
                    for (inner_key, inner_value) in inner {
                        if !inner_value.is_object() && !inner_value.is_array() {
                            cells.push((format!("{key}.{inner_key}"), scalar(inner_value)));
                        }
                    }
                }
                Value::Array(items) => cells.push((key.clone(), format!("[{}]", items.len()))),
                other => cells.push((key.clone(), scalar(other))),
            }
        }
    }
    cells
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_render_as_lines_and_tables() {
        let answer = r#"{"nodes_up":2,"nodes":[{"id":0,"state":"up","status":{"running":true}},
            {"id":1,"state":"down","error":null,"status":{"running":false}}],"queue":{"length":3}}"#;
        let text = render(answer);
        assert!(text.contains("nodes_up: 2\n"), "{text}");
        assert!(
            text.contains("  id  state  status.running  error"),
            "{text}"
        );
        assert!(text.contains("  1   down   false           -"), "{text}");
        assert!(text.contains("queue:\n  length: 3\n"), "{text}");
        assert_eq!(render("not json"), "not json\n");
        // A top-level list of records (user list, key list) is a table too.
        let users = render(r#"[{"name":"alice","policies":["readwrite"]}]"#);
        assert!(users.starts_with("name   policies"), "{users}");
        assert_eq!(render("[]"), "(none)\n");
    }

    #[test]
    fn cluster_and_scrub_answers_get_their_own_tables() {
        let cluster = r#"{"data_shards":4,"parity_shards":2,"write_quorum":5,"nodes_up":1,
            "nodes":[{"id":0,"name":"disk0","address":"/d0","state":"up","latency_ms":0.25,
            "free_bytes":1610612736,"total_bytes":2147483648}]}"#;
        let text = render_topic(Topic::Cluster, cluster, 0);
        assert!(
            text.starts_with("4+2 erasure coding, write quorum 5, 1 of 1 nodes up"),
            "{text}"
        );
        assert!(
            text.contains("ID  NAME   ADDRESS  STATE  LATENCY  FREE     TOTAL"),
            "{text}"
        );
        assert!(
            text.contains("0   disk0  /d0      up     0.2 ms   1.5 GiB  2.0 GiB"),
            "{text}"
        );
        assert!(!text.contains("GATEWAY"), "{text}");
        let shared = r#"{"data_shards":4,"parity_shards":2,"write_quorum":5,"nodes_up":0,
            "nodes":[],"gateway":{"id":"gw-a","leader":false,"leader_id":"gw-b"},
            "gateways":[{"id":"gw-a","address":"127.0.0.1:9000","alive":true},
                        {"id":"gw-b","address":"127.0.0.1:9001","alive":true}]}"#;
        let text = render_topic(Topic::Cluster, shared, 0);
        assert!(
            text.contains("gw-a     127.0.0.1:9000  alive  this gateway"),
            "{text}"
        );
        assert!(
            text.contains("gw-b     127.0.0.1:9001  alive  leader"),
            "{text}"
        );

        let scrub = r#"{"stores":2,"stores_reachable":1,"corrupt_found_total":3,
            "pending_reports":0,"shards_handed_to_repair":3,"stores_detail":[
            {"node":0,"name":"disk0","reachable":true,"error":null,"pending_reports":0,
             "status":{"enabled":true,"bytes_per_sec":8388608,"running":true,
             "pass_started_ms":1000,"pass_files_checked":7,"pass_bytes_checked":2048,
             "passes_completed":2,"last_pass_completed_ms":500,"last_pass_duration_ms":90000,
             "last_pass_bytes_checked":1048576,"total_corrupt_found":3}},
            {"node":1,"name":"node1","reachable":false,"error":"connection refused",
             "pending_reports":0,"status":null}]}"#;
        let text = render_topic(Topic::Scrub, scrub, 61_000);
        assert!(
            text.starts_with("1 of 2 stores answering, 3 corrupt shards found"),
            "{text}"
        );
        assert!(text.contains("running 60s ago: 7 files, 2.0 KiB"), "{text}");
        assert!(text.contains("8.0 MiB/s"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("90s"), "{text}");
        // Topics without a table of their own, or odd answers, fall back to the generic view.
        assert_eq!(render_topic(Topic::Gc, r#"{"queue":2}"#, 0), "queue: 2\n");
        assert_eq!(render_topic(Topic::Scrub, r#"{"x":1}"#, 0), "x: 1\n");
    }

    #[test]
    fn refusals_name_the_s3_error() {
        let body = b"<Error><Code>SignatureDoesNotMatch</Code><Message>nope</Message></Error>";
        let text = refusal(
            http::StatusCode::FORBIDDEN,
            body,
            "http://x/_strata/admin/scrub",
        );
        assert!(text.contains("refused the credentials"), "{text}");
        assert!(text.contains("SignatureDoesNotMatch: nope"), "{text}");
        let text = refusal(http::StatusCode::NOT_FOUND, b"plain", "http://x/y");
        assert!(
            text.contains("404") && text.contains("does not exist"),
            "{text}"
        );
        let text = refusal(http::StatusCode::BAD_GATEWAY, b"plain", "http://x/y");
        assert!(text.contains("502") && text.contains("plain"), "{text}");
        // An identity call's JSON error names its code, even on a 404.
        let text = refusal(
            http::StatusCode::NOT_FOUND,
            br#"{"code":"NoSuchUser","error":"no such user"}"#,
            "http://x/_strata/admin/users/bob",
        );
        assert!(text.contains("NoSuchUser: no such user"), "{text}");
    }

    fn args(topic: Topic, action: Option<Action>, name: Option<&str>) -> AdminArgs {
        AdminArgs {
            topic,
            action,
            name: name.map(str::to_string),
            policies: Vec::new(),
            user: None,
            document: None,
            config: None,
            force: false,
            endpoint: None,
            access_key: None,
            secret_key: None,
            data: None,
            region: "us-east-1".into(),
            json: false,
            timeout: 1,
        }
    }

    #[test]
    fn identity_verbs_become_admin_calls() {
        let mut create = args(Topic::User, Some(Action::Create), Some("alice"));
        create.policies = vec!["readonly".into()];
        let call = identity_call(&create).unwrap();
        assert_eq!(
            (call.method, call.path.as_str()),
            ("POST", "/_strata/admin/users")
        );
        let body: Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(body["name"], "alice");
        assert_eq!(body["policies"][0], "readonly");
        let disable = identity_call(&args(Topic::Key, Some(Action::Disable), Some("SK1"))).unwrap();
        assert_eq!(
            (disable.method, disable.path.as_str()),
            ("PUT", "/_strata/admin/keys/SK1")
        );
        assert_eq!(disable.body, br#"{"status":"disabled"}"#);
        let list = identity_call(&args(Topic::Key, None, None)).unwrap();
        assert_eq!((list.method, list.body.len()), ("GET", 0));
        assert!(identity_call(&args(Topic::User, Some(Action::Delete), None)).is_err());
        assert!(identity_call(&args(Topic::Policy, Some(Action::Create), Some("p"))).is_err());
        assert!(identity_call(&args(Topic::Policy, Some(Action::Disable), Some("p"))).is_err());
        let mut keys = args(Topic::Key, Some(Action::List), None);
        keys.user = Some("bob".into());
        let answer = r#"[{"user":"bob","access_key":"A"},{"user":"al","access_key":"B"}]"#;
        let only: Vec<Value> =
            serde_json::from_str(&only_users_keys(&keys, answer.into()).unwrap()).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only[0]["access_key"], "A");
    }

    #[test]
    fn endpoints_must_be_plain_http() {
        let mut args = args(Topic::Scrub, Some(Action::Status), None);
        args.endpoint = Some("http://127.0.0.1:9000/".into());
        assert_eq!(
            endpoint(&args).unwrap(),
            ("127.0.0.1:9000".into(), "http://127.0.0.1:9000".into())
        );
        args.endpoint = Some("ftp://host:1".into());
        assert!(endpoint(&args).is_err());
        args.endpoint = Some("http://host:1/path".into());
        assert!(endpoint(&args).is_err());
    }
}
