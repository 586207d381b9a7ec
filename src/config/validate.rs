//! Turns the parsed JSON into a resolved [`Config`], one section at a time, collecting
//! every problem instead of stopping at the first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

use super::check::{Checker, Problem, index, join};
use super::http_services;
use super::{
    ALERTMANAGER_SCOPE, ApiConfig, Config, DEFAULT_FORGET_AFTER, DEFAULT_MAX_FILES,
    DEFAULT_MAX_LINE_BYTES, DEFAULT_SEND_TIMEOUT, Destination, Encoding, Format, MailConfig,
    RuleConfig, Secret, Service, StartAt, TelegramConfig, ThrottleConfig, TlsMode, WatchConfig,
    WatchMode, WebhookConfig, host_name, legacy,
};
use crate::event::Severity;

const TOP: &[&str] = &[
    "instrument",
    "mail",
    "telegram",
    "webhook",
    "alertmanager",
    "watch",
    "rules",
    "routes",
    "throttle",
    "api",
    "state_dir",
];
const API: &[&str] = &["listen", "token", "token_file", "hosts", "max_alerts"];
const THROTTLE: &[&str] = &["repeat_interval", "max_age", "per_minute"];
const PER_MINUTE: &[&str] = &["mail", "telegram", "webhook"];
const MAIL: &[&str] = &[
    "user",
    "password",
    "password_file",
    "port",
    "server",
    "recipients",
    "from",
    "tls",
    "ca_file",
    "scopes",
    "default_scope",
    "timeout_s",
];
const TELEGRAM: &[&str] = &[
    "bot-id",
    "channel-id",
    "api-url",
    "scopes",
    "default_scope",
    "timeout_s",
];
const WATCH: &[&str] = &[
    "path",
    "encoding",
    "start",
    "mode",
    "poll_interval_ms",
    "format",
    "max_line_bytes",
    "max_files",
    "forget_after",
];
const RULE: &[&str] = &["name", "pattern", "event", "severity", "key"];
const ROUTE: &[&str] = &["service", "scope"];

/// Every key the loader accepts, by the JSON path of the object it is in (`watch[]`: each
/// entry of `watch`, `routes.*[]`: each destination of any event). The schema
/// (`schema.rs`) and its tests are held to this list.
pub const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", TOP),
    ("mail", MAIL),
    ("telegram", TELEGRAM),
    ("webhook", http_services::WEBHOOK),
    ("webhook.scopes.*", http_services::WEBHOOK_SCOPE),
    ("alertmanager", http_services::ALERTMANAGER),
    ("watch[]", WATCH),
    ("rules[]", RULE),
    ("routes.*[]", ROUTE),
    ("throttle", THROTTLE),
    ("throttle.per_minute", PER_MINUTE),
    ("api", API),
];

/// The scope that the old bot's single `recipients` / `channel-id` become.
pub const DEFAULT_SCOPE: &str = "default";

pub fn config(value: &Value, file: &Path, base: &Path) -> Result<Config, Vec<Problem>> {
    let mut c = Checker::default();
    let Some(top) = c.object(value, "", TOP) else {
        return Err(c.problems);
    };
    let instrument = c.non_empty(top, "instrument", "").unwrap_or_else(host_name);
    let mail = top.get("mail").and_then(|v| mail(&mut c, v, base));
    let telegram = top.get("telegram").and_then(|v| telegram(&mut c, v));
    let webhook = top
        .get("webhook")
        .and_then(|v| http_services::webhook(&mut c, v, base));
    let alertmanager = top
        .get("alertmanager")
        .and_then(|v| http_services::alertmanager(&mut c, v));
    let watch = match top.get("watch") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, w)| watch(&mut c, w, &index("watch", i), base))
            .collect(),
        Some(other) => {
            c.wrong_type("watch", "a list of watch entries", other);
            Vec::new()
        }
    };
    let rules = match top.get("rules") {
        None => Vec::new(),
        Some(Value::Array(items)) => rules(&mut c, items),
        Some(other) => {
            c.wrong_type("rules", "a list of rules", other);
            Vec::new()
        }
    };
    let services = Services {
        mail: mail.as_ref(),
        telegram: telegram.as_ref(),
        webhook: webhook.as_ref(),
        alertmanager: alertmanager.is_some(),
    };
    let routes = top.get("routes").and_then(|v| routes(&mut c, v, &services));
    let throttle = top
        .get("throttle")
        .and_then(|v| throttle(&mut c, v))
        .unwrap_or_default();
    let api = match top.get("api") {
        Some(v) => api(&mut c, v, base),
        None => Some(ApiConfig::default()),
    };
    let state_dir = resolve(
        base,
        &c.non_empty(top, "state_dir", "")
            .unwrap_or_else(|| ".protowatch".into()),
    );
    if c.problems.is_empty() {
        Ok(Config {
            file: file.to_path_buf(),
            instrument,
            mail,
            telegram,
            webhook,
            alertmanager,
            watch,
            rules,
            routes,
            throttle,
            api: api.unwrap_or_default(),
            state_dir,
        })
    } else {
        Err(c.problems)
    }
}

pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    // Windows accepts both separators; one kind reads better in messages and logs.
    #[cfg(windows)]
    let p = &p.replace('/', "\\");
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn address(c: &mut Checker, s: &str, path: &str) -> Option<String> {
    match lettre::Address::from_str(s.trim()) {
        Ok(_) => Some(s.trim().to_string()),
        Err(e) => {
            c.problem(
                path,
                format!("expected an e-mail address, found {s:?} ({e})"),
            );
            None
        }
    }
}

fn mail(c: &mut Checker, v: &Value, base: &Path) -> Option<MailConfig> {
    let p = "mail";
    let m = c.object(v, p, MAIL)?;
    let server = c.non_empty(m, "server", p);
    let server = c.required(server, m, "server", p);
    let tls = c.choice(m, "tls", p, &TlsMode::CHOICES);
    let port = legacy::port(c, m, p);
    let (tls, port) = match (tls, port) {
        (Some(t), Some(port)) => (t, port),
        (None, Some(465)) => (TlsMode::Wrapper, 465),
        (None, Some(port)) => (TlsMode::Opportunistic, port),
        (Some(TlsMode::Wrapper), None) => (TlsMode::Wrapper, 465),
        (Some(TlsMode::StartTls), None) => (TlsMode::StartTls, 587),
        (Some(t), None) => (t, 25),
        (None, None) => (TlsMode::Opportunistic, 25),
    };
    let user = c.string(m, "user", p).filter(|u| !u.is_empty());
    let password = match (m.get("password"), m.get("password_file")) {
        (Some(_), Some(_)) => {
            c.problem(
                join(p, "password_file"),
                "set either password or password_file, not both",
            );
            None
        }
        // The old bot's files carry `"password": ""` for servers without AUTH.
        (Some(_), None) => c
            .string(m, "password", p)
            .filter(|s| !s.is_empty())
            .map(Secret::new),
        (None, Some(_)) => c.non_empty(m, "password_file", p).and_then(|f| {
            let file = resolve(base, &f);
            match std::fs::read_to_string(&file) {
                // A trailing newline from `echo pw > file` is not part of the password.
                Ok(s) => Some(Secret::new(s.trim_end_matches(['\r', '\n']))),
                Err(e) => {
                    c.problem(
                        join(p, "password_file"),
                        format!("cannot read {}: {e}", file.display()),
                    );
                    None
                }
            }
        }),
        (None, None) => None,
    };
    if password.is_some() && user.is_none() {
        c.problem(
            join(p, "user"),
            "a password is set but no user to log in with",
        );
    }
    let from = match c.non_empty(m, "from", p) {
        Some(f) => {
            match lettre::message::Mailbox::from_str(&f) {
                Ok(_) => Some(f),
                Err(e) => {
                    c.problem(
                    join(p, "from"),
                    format!("expected an address like \"Sonix <sonix@example.org>\", found {f:?} ({e})"),
                );
                    None
                }
            }
        }
        None => Some(default_from(user.as_deref())),
    };
    let ca_file = c.non_empty(m, "ca_file", p).map(|f| resolve(base, &f));
    if let Some(f) = &ca_file
        && !f.is_file()
    {
        c.problem(join(p, "ca_file"), format!("no such file: {}", f.display()));
    }

    let mut scopes = BTreeMap::new();
    if let Some(list) = legacy::recipients(c, m, p) {
        let list: Vec<String> = list
            .iter()
            .enumerate()
            .filter_map(|(i, a)| address(c, a, &index(&join(p, "recipients"), i)))
            .collect();
        scopes.insert(DEFAULT_SCOPE.to_string(), list);
    }
    if let Some(sv) = m.get("scopes") {
        let sp = join(p, "scopes");
        if let Some(obj) = sv.as_object() {
            for (name, list) in obj {
                let lp = join(&sp, name);
                if name == DEFAULT_SCOPE && scopes.contains_key(DEFAULT_SCOPE) {
                    c.problem(
                        &lp,
                        "the scope \"default\" is already given by mail.recipients",
                    );
                    continue;
                }
                let Some(items) = list.as_array() else {
                    c.wrong_type(&lp, "a list of e-mail addresses", list);
                    continue;
                };
                let mut addrs = Vec::new();
                for (i, a) in items.iter().enumerate() {
                    match a.as_str() {
                        Some(s) => addrs.extend(address(c, s, &index(&lp, i))),
                        None => c.wrong_type(&index(&lp, i), "an e-mail address (a string)", a),
                    }
                }
                if items.is_empty() {
                    c.problem(&lp, "a scope needs at least one address");
                }
                scopes.insert(name.clone(), addrs);
            }
        } else {
            c.wrong_type(&sp, "an object mapping scope names to address lists", sv);
        }
    }
    if scopes.values().all(Vec::is_empty) {
        c.problem(
            join(p, "recipients"),
            "no recipients: set mail.recipients (or mail.scopes) to at least one address",
        );
    }
    let default_scope = default_scope(c, m, p, "mail", scopes.keys());
    let timeout = c.uint(m, "timeout_s", p, 1, 600);
    Some(MailConfig {
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
        server: server?,
        port,
        user,
        password,
        from: from?,
        tls,
        ca_file,
        scopes,
        default_scope,
    })
}

/// `user` when it is an address, else `protowatch@<host>`.
fn default_from(user: Option<&str>) -> String {
    if let Some(u) = user
        && lettre::Address::from_str(u).is_ok()
    {
        return u.to_string();
    }
    let host = host_name().to_ascii_lowercase();
    let candidate = format!("protowatch@{host}");
    if lettre::Address::from_str(&candidate).is_ok() {
        candidate
    } else {
        "protowatch@localhost".to_string()
    }
}

fn telegram(c: &mut Checker, v: &Value) -> Option<TelegramConfig> {
    let p = "telegram";
    let t = c.object(v, p, TELEGRAM)?;
    let token = c.non_empty(t, "bot-id", p);
    let token = c.required(token, t, "bot-id", p);
    if let Some(tok) = &token
        && !looks_like_token(tok)
    {
        // Never echo the value: it may be a real token with a typo in it.
        c.problem(
            join(p, "bot-id"),
            "expected a Bot API token of the form <digits>:<letters, digits, - and _> (as BotFather gives it)",
        );
    }
    let api_url = c
        .non_empty(t, "api-url", p)
        .unwrap_or_else(|| "https://api.telegram.org".to_string());
    let api_url = match url::Url::parse(api_url.trim_end_matches('/')) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        _ => {
            c.problem(
                join(p, "api-url"),
                format!("expected an http:// or https:// URL, found {api_url:?}"),
            );
            None
        }
    };
    let mut scopes = BTreeMap::new();
    if let Some(id) = t.get("channel-id")
        && let Some(id) = legacy::chat_id(c, id, &join(p, "channel-id"))
    {
        scopes.insert(DEFAULT_SCOPE.to_string(), id);
    }
    if let Some(sv) = t.get("scopes") {
        let sp = join(p, "scopes");
        match sv.as_object() {
            Some(obj) => {
                for (name, id) in obj {
                    let lp = join(&sp, name);
                    if name == DEFAULT_SCOPE && scopes.contains_key(DEFAULT_SCOPE) {
                        c.problem(
                            &lp,
                            "the scope \"default\" is already given by telegram.channel-id",
                        );
                        continue;
                    }
                    if let Some(id) = legacy::chat_id(c, id, &lp) {
                        scopes.insert(name.clone(), id);
                    }
                }
            }
            None => c.wrong_type(&sp, "an object mapping scope names to chat ids", sv),
        }
    }
    if scopes.is_empty() && !t.contains_key("channel-id") && !t.contains_key("scopes") {
        c.problem(
            join(p, "channel-id"),
            "missing: set telegram.channel-id (or telegram.scopes) to the chat to send to",
        );
    }
    let default_scope = default_scope(c, t, p, "telegram", scopes.keys());
    let timeout = c.uint(t, "timeout_s", p, 1, 600);
    Some(TelegramConfig {
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
        token: Secret::new(token?),
        api_url: api_url?,
        scopes,
        default_scope,
    })
}

/// `<service>.default_scope`: the explicit name, which must be one of the service's scopes;
/// else `default` when that scope exists (the old bot's `recipients` / `channel-id`); else
/// none, and then every route entry of the service has to name its scope.
pub(super) fn default_scope<'a>(
    c: &mut Checker,
    map: &serde_json::Map<String, Value>,
    path: &str,
    service: &str,
    scopes: impl Iterator<Item = &'a String> + Clone,
) -> Option<String> {
    if !map.contains_key("default_scope") {
        return scopes
            .clone()
            .any(|s| s == DEFAULT_SCOPE)
            .then(|| DEFAULT_SCOPE.to_string());
    }
    let name = c.non_empty(map, "default_scope", path)?;
    if scopes.clone().any(|s| *s == name) {
        Some(name)
    } else {
        c.problem(
            join(path, "default_scope"),
            unknown_scope(service, &name, scopes),
        );
        None
    }
}

/// The message for a scope name that the service does not have, with the ones it has.
pub fn unknown_scope<S: AsRef<str>>(
    service: &str,
    name: &str,
    scopes: impl IntoIterator<Item = S>,
) -> String {
    let names: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_string()).collect();
    format!(
        "unknown {service} scope {name:?}; configured scopes: {}",
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        }
    )
}

fn looks_like_token(t: &str) -> bool {
    match t.split_once(':') {
        Some((id, rest)) => {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        None => false,
    }
}

fn watch(c: &mut Checker, v: &Value, p: &str, base: &Path) -> Option<WatchConfig> {
    let w = c.object(v, p, WATCH)?;
    let path = c.non_empty(w, "path", p);
    let path = c.required(path, w, "path", p);
    let path = path.and_then(|raw| {
        let full = resolve(base, &raw).to_string_lossy().into_owned();
        match glob::Pattern::new(&full) {
            Ok(_) => Some(full),
            Err(e) => {
                c.problem(join(p, "path"), format!("invalid glob {raw:?}: {e}"));
                None
            }
        }
    });
    let encoding = c.choice(w, "encoding", p, &Encoding::CHOICES);
    let start = c.choice(
        w,
        "start",
        p,
        &[("end", StartAt::End), ("beginning", StartAt::Beginning)],
    );
    let mode = c.choice(
        w,
        "mode",
        p,
        &[("notify", WatchMode::Notify), ("poll", WatchMode::Poll)],
    );
    let poll = c.uint(w, "poll_interval_ms", p, 50, 3_600_000);
    let format = c.choice(w, "format", p, &[("sonix", Format::Sonix)]);
    let max_line = c.uint(w, "max_line_bytes", p, 1024, 256 << 20);
    let max_files = c.uint(w, "max_files", p, 1, 10_000_000);
    let forget_after = c.duration(
        w,
        "forget_after",
        p,
        Duration::from_secs(60),
        Duration::from_secs(366 * 86400),
    );
    Some(WatchConfig {
        path: path?,
        encoding: encoding.unwrap_or(Encoding::Auto),
        start: start.unwrap_or(StartAt::End),
        mode: mode.unwrap_or(WatchMode::Notify),
        poll_interval: Duration::from_millis(poll.unwrap_or(1000)),
        format: format.unwrap_or(Format::Sonix),
        max_line_bytes: max_line.map_or(DEFAULT_MAX_LINE_BYTES, |n| n as usize),
        max_files: max_files.map_or(DEFAULT_MAX_FILES, |n| n as usize),
        forget_after: forget_after.unwrap_or(DEFAULT_FORGET_AFTER),
    })
}

fn rules(c: &mut Checker, items: &[Value]) -> Vec<RuleConfig> {
    let mut out: Vec<RuleConfig> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let p = index("rules", i);
        let Some(r) = c.object(v, &p, RULE) else {
            continue;
        };
        let name = c.non_empty(r, "name", &p);
        let name = c.required(name, r, "name", &p);
        if let Some(n) = &name
            && out.iter().any(|o| &o.name == n)
        {
            c.problem(
                join(&p, "name"),
                format!("a rule named {n:?} comes earlier"),
            );
        }
        let pattern = c.non_empty(r, "pattern", &p);
        let pattern =
            c.required(pattern, r, "pattern", &p)
                .and_then(|pat| match regex::Regex::new(&pat) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        c.problem(
                            join(&p, "pattern"),
                            format!("invalid regex{}: {e}", of_rule(name.as_deref())),
                        );
                        None
                    }
                });
        let event = c.non_empty(r, "event", &p);
        let event = c.required(event, r, "event", &p);
        let ignore = event.as_deref() == Some("ignore");
        let severity = c
            .string(r, "severity", &p)
            .and_then(|s| match s.parse::<Severity>() {
                Ok(sev) => Some(sev),
                Err(e) => {
                    c.problem(
                        join(&p, "severity"),
                        format!(
                            "unknown severity {:?}{}: expected {}",
                            e.0,
                            of_rule(name.as_deref()),
                            Severity::ACCEPTED
                        ),
                    );
                    None
                }
            });
        if severity.is_none() && !ignore && !r.contains_key("severity") {
            c.problem(
                join(&p, "severity"),
                format!(
                    "missing (required){}: one of {}",
                    of_rule(name.as_deref()),
                    Severity::ACCEPTED
                ),
            );
        }
        let key = c.non_empty(r, "key", &p);
        if let (Some(name), Some(pattern), Some(event)) = (name, pattern, event) {
            out.push(RuleConfig {
                name,
                pattern,
                event: (!ignore).then_some(event),
                severity: severity.unwrap_or(Severity::Info),
                key,
            });
        }
    }
    out
}

/// ` in rule "name"`: a rule's problems name it, as operators know rules by name.
fn of_rule(name: Option<&str>) -> String {
    name.map(|n| format!(" in rule {n:?}")).unwrap_or_default()
}

fn api(c: &mut Checker, v: &Value, base: &Path) -> Option<ApiConfig> {
    let p = "api";
    let a = c.object(v, p, API)?;
    let mut out = ApiConfig::default();
    if let Some(listen) = c.non_empty(a, "listen", p) {
        match listen.parse::<std::net::SocketAddr>() {
            Ok(addr) => out.listen = addr,
            Err(_) => c.problem(
                join(p, "listen"),
                format!("expected an address and port like \"127.0.0.1:8767\", found {listen:?}"),
            ),
        }
    }
    out.token = match (a.get("token"), a.get("token_file")) {
        (Some(_), Some(_)) => {
            c.problem(
                join(p, "token_file"),
                "set either token or token_file, not both",
            );
            None
        }
        (Some(_), None) => c.non_empty(a, "token", p).map(Secret::new),
        (None, Some(_)) => c.non_empty(a, "token_file", p).and_then(|f| {
            let path = resolve(base, &f);
            match std::fs::read_to_string(&path) {
                Ok(t) if !t.trim().is_empty() => Some(Secret::new(t.trim())),
                Ok(_) => {
                    c.problem(
                        join(p, "token_file"),
                        format!("{} is empty", path.display()),
                    );
                    None
                }
                Err(e) => {
                    c.problem(
                        join(p, "token_file"),
                        format!("cannot read {}: {e}", path.display()),
                    );
                    None
                }
            }
        }),
        (None, None) => None,
    };
    if let Some(v) = a.get("hosts") {
        match v.as_array() {
            Some(list) => {
                for (i, h) in list.iter().enumerate() {
                    match h.as_str().map(str::trim) {
                        Some(h)
                            if !h.is_empty()
                                && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') =>
                        {
                            out.hosts.push(h.to_ascii_lowercase())
                        }
                        _ => c.problem(
                            format!("{p}.hosts[{i}]"),
                            format!("expected a host name such as \"in5-pc.example.org\" (no port, no scheme), found {h}"),
                        ),
                    }
                }
            }
            None => c.problem(
                join(p, "hosts"),
                format!("expected a list of host names, found {v}"),
            ),
        }
    }
    if let Some(v) = a.get("max_alerts") {
        match v.as_u64() {
            Some(n) if (1..=1_000_000).contains(&n) => out.max_alerts = n as usize,
            _ => c.problem(
                join(p, "max_alerts"),
                format!("expected a whole number from 1 to 1000000, found {v}"),
            ),
        }
    }
    if !out.listen.ip().is_loopback() && out.token.is_none() {
        c.problem(
            join(p, "token"),
            format!(
                "required when api.listen is not a loopback address ({}): anyone on the network could read and send alerts",
                out.listen
            ),
        );
    }
    Some(out)
}

fn throttle(c: &mut Checker, v: &Value) -> Option<ThrottleConfig> {
    let p = "throttle";
    let t = c.object(v, p, THROTTLE)?;
    let mut out = ThrottleConfig::default();
    let day = Duration::from_secs(24 * 3600);
    if let Some(d) = c.duration(t, "repeat_interval", p, Duration::ZERO, day) {
        out.repeat_interval = d;
    }
    if let Some(d) = c.duration(t, "max_age", p, Duration::from_secs(60), 30 * day) {
        out.max_age = d;
    }
    if let Some(pm) = t.get("per_minute") {
        let pp = join(p, "per_minute");
        if let Some(pm) = c.object(pm, &pp, PER_MINUTE) {
            if let Some(n) = c.uint(pm, "mail", &pp, 1, 10_000) {
                out.mail_per_minute = n as u32;
            }
            if let Some(n) = c.uint(pm, "telegram", &pp, 1, 10_000) {
                out.telegram_per_minute = n as u32;
            }
            if let Some(n) = c.uint(pm, "webhook", &pp, 1, 10_000) {
                out.webhook_per_minute = n as u32;
            }
        }
    }
    Some(out)
}

/// The configured services, as far as `routes` needs to know them.
struct Services<'a> {
    mail: Option<&'a MailConfig>,
    telegram: Option<&'a TelegramConfig>,
    webhook: Option<&'a WebhookConfig>,
    alertmanager: bool,
}

fn routes(
    c: &mut Checker,
    v: &Value,
    services: &Services<'_>,
) -> Option<BTreeMap<String, Vec<Destination>>> {
    let alertmanager_scope = ALERTMANAGER_SCOPE.to_string();
    let service_choices: Vec<(&str, Service)> =
        Service::ALL.iter().map(|s| (s.as_str(), *s)).collect();
    let Some(obj) = v.as_object() else {
        c.wrong_type("routes", "an object mapping event names to destinations", v);
        return None;
    };
    let mut out = BTreeMap::new();
    for (event, targets) in obj {
        let ep = join("routes", event);
        let Some(items) = targets.as_array() else {
            c.wrong_type(&ep, "a list of {\"service\", \"scope\"}", targets);
            continue;
        };
        let mut list = Vec::new();
        for (i, t) in items.iter().enumerate() {
            let tp = index(&ep, i);
            let Some(t) = c.object(t, &tp, ROUTE) else {
                continue;
            };
            let service = c.choice(t, "service", &tp, &service_choices);
            let service = c.required(service, t, "service", &tp);
            let scope = c.non_empty(t, "scope", &tp);
            let Some(service) = service else { continue };
            // Each service's scope names, and its default scope for entries without one.
            let known: Option<(Vec<&String>, Option<&String>)> = match service {
                Service::Mail => services
                    .mail
                    .map(|m| (m.scopes.keys().collect(), m.default_scope.as_ref())),
                Service::Telegram => services
                    .telegram
                    .map(|t| (t.scopes.keys().collect(), t.default_scope.as_ref())),
                Service::Webhook => services
                    .webhook
                    .map(|w| (w.scopes.keys().collect(), w.default_scope.as_ref())),
                Service::Alertmanager => services
                    .alertmanager
                    .then(|| (vec![&alertmanager_scope], Some(&alertmanager_scope))),
            };
            let Some((names, default)) = known else {
                c.problem(
                    join(&tp, "service"),
                    format!("the service {service} is not configured (no \"{service}\" section)"),
                );
                continue;
            };
            let scope = match (scope, default) {
                (Some(s), _) => s,
                // An empty or mistyped "scope" was reported already.
                (None, _) if t.contains_key("scope") => continue,
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    c.problem(
                        join(&tp, "scope"),
                        format!(
                            "missing, and {service} has no default scope: name one of {} here, or set {service}.default_scope",
                            if names.is_empty() {
                                "its scopes".to_string()
                            } else {
                                names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                            }
                        ),
                    );
                    continue;
                }
            };
            if names.contains(&&scope) {
                let target = Destination { service, scope };
                if !list.contains(&target) {
                    list.push(target);
                }
            } else {
                c.problem(
                    join(&tp, "scope"),
                    unknown_scope(service.as_str(), &scope, names),
                );
            }
        }
        out.insert(event.clone(), list);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(looks_like_token("123456:ABC-def_9"));
        assert!(!looks_like_token("123456"));
        assert!(!looks_like_token("abc:def"));
        assert!(!looks_like_token("1:"));
    }

    #[test]
    fn default_from_uses_user_when_an_address() {
        assert_eq!(default_from(Some("bot@example.org")), "bot@example.org");
        assert!(default_from(Some("sonix-bot")).starts_with("protowatch@"));
    }
}
