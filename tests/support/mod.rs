//! Real servers on loopback for the tests: an SMTP server (aiosmtpd, Debian's
//! `python3-aiosmtpd`, started as a process) and a fake Telegram Bot API that records
//! every request and answers as a test scripts it — like Telegram: `getMe` with a bot,
//! `getChat` with the chat asked for, a sent message with a message id of its own (one
//! more than the last), `getUpdates` as a long poll over the presses and commands a
//! test queues (an offset confirms what came before it), `editMessageText` /
//! `editMessageReplyMarkup` of a message it sent (or "message to edit not found", or
//! "message is not modified"), and `true` for `answerCallbackQuery`, `setMyCommands`
//! and `deleteWebhook`. Plus certificates, config files and the binary under test.

#![allow(dead_code)] // each test file uses a different part of this module

pub mod scilog;
pub mod signal;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The interpreter that has Debian's aiosmtpd.
pub fn python() -> String {
    if let Ok(p) = std::env::var("PROTOWATCH_TEST_PYTHON") {
        return p;
    }
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

/// One message as the SMTP server received and parsed it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub from: String,
    pub to: String,
    /// `(content type, decoded text)` of each MIME leaf part.
    pub parts: Vec<(String, String)>,
    /// `(file name, content type, bytes)` of each attached file.
    pub attachments: Vec<(String, String, Vec<u8>)>,
    pub tls: bool,
    pub auth_user: Option<String>,
    /// The client's port: two mails with different ports came on two connections.
    pub peer_port: u16,
}

impl Mail {
    pub fn part(&self, content_type: &str) -> &str {
        self.parts
            .iter()
            .find(|(ct, _)| ct == content_type)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no {content_type} part in {:?}", self.parts))
    }
}

#[derive(Default)]
pub struct SmtpOptions {
    /// PEM files: STARTTLS offered and required.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// AUTH required with this user and password.
    pub auth: Option<(String, String)>,
    /// Refuse every recipient with 550.
    pub reject: bool,
    /// Listen on this port (to restart a server where it was).
    pub port: Option<u16>,
    /// With `tls`: TLS from the first byte (SMTPS) instead of STARTTLS.
    pub wrapper: bool,
    /// Close a connection that is idle this long (aiosmtpd's `timeout`; 300 s unset).
    pub idle_timeout: Option<Duration>,
}

pub struct SmtpServer {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    received: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpServer {
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = Command::new(python());
        cmd.arg(script);
        if let Some((cert, key)) = &opts.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some((u, p)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{u}:{p}"));
        }
        if opts.reject {
            cmd.arg("--reject");
        }
        if opts.wrapper {
            cmd.arg("--wrapper");
        }
        if let Some(port) = opts.port {
            cmd.arg("--port").arg(port.to_string());
        }
        if let Some(idle) = opts.idle_timeout {
            cmd.arg("--idle-timeout")
                .arg(idle.as_secs_f64().to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the aiosmtpd test server (apt-get install python3-aiosmtpd)");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .expect("the SMTP server says READY (is python3-aiosmtpd installed?)");
        let port: u16 = first
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the SMTP server: {first}"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).expect("a JSON record");
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let mail = Mail {
                    mail_from: s("mail_from"),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                    subject: s("subject"),
                    from: s("from"),
                    to: s("to"),
                    parts: v["parts"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|p| {
                                    (
                                        p["content_type"].as_str().unwrap_or_default().to_string(),
                                        p["text"].as_str().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    attachments: v["attachments"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|p| {
                                    use base64::Engine;
                                    let b64 = p["base64"].as_str().unwrap_or_default();
                                    (
                                        p["filename"].as_str().unwrap_or_default().to_string(),
                                        p["content_type"].as_str().unwrap_or_default().to_string(),
                                        base64::engine::general_purpose::STANDARD
                                            .decode(b64)
                                            .unwrap_or_default(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    tls: v["tls"].as_bool().unwrap_or(false),
                    auth_user: v["auth_user"].as_str().map(String::from),
                    peer_port: v["peer_port"].as_u64().unwrap_or(0) as u16,
                };
                sink.lock().unwrap().push(mail);
            }
        });
        SmtpServer {
            child,
            _stdin: stdin,
            port,
            received,
        }
    }

    pub fn messages(&self) -> Vec<Mail> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived; returns all of them.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        wait_until(timeout, || self.received.lock().unwrap().len() >= n);
        self.messages()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`:
/// returns `(ca.pem, server.pem, server.key)`.
pub fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "protowatch test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, server_key.serialize_pem()).unwrap();
    paths
}

/// One request that reached the fake Bot API.
#[derive(Debug, Clone)]
pub struct TgRequest {
    /// The token from the path (`/bot<token>/<method>`).
    pub token: String,
    /// The method, lower-cased (`sendmessage`).
    pub method: String,
    pub body: Value,
    /// The body as it came: a multipart upload (sendPhoto, sendDocument) is not JSON.
    pub raw: Vec<u8>,
    pub at: Instant,
    /// The id the fake gave the message this request sent, if it sent one.
    pub message_id: Option<i64>,
}

impl TgRequest {
    /// The `callback_data` of the inline button labelled `label`, if it has one.
    pub fn button_data(&self, label: &str) -> Option<String> {
        buttons(&self.body)
            .into_iter()
            .find(|b| b["text"] == label)
            .and_then(|b| b["callback_data"].as_str().map(String::from))
    }

    /// The labels of its inline buttons, row by row.
    pub fn button_labels(&self) -> Vec<String> {
        buttons(&self.body)
            .into_iter()
            .filter_map(|b| b["text"].as_str().map(String::from))
            .collect()
    }

    pub fn text(&self) -> &str {
        self.body["text"].as_str().unwrap_or_default()
    }
}

fn buttons(body: &Value) -> Vec<Value> {
    body.pointer("/reply_markup/inline_keyboard")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        .collect()
}

/// How the fake Bot API answers the next request.
#[derive(Debug, Clone)]
pub enum Reply {
    Ok,
    TooManyRequests {
        retry_after: u64,
    },
    BadRequest(&'static str),
    /// A 400 that the fake itself gives, as Telegram would (see [`refusal`]).
    Refused(String),
    ServerError,
    /// 409, as Telegram answers a `getUpdates` while another one polls the same bot.
    Conflict,
    /// The answer's head, then the connection breaks: a network path that failed.
    Hangup,
}

/// The tags Telegram's HTML parse mode knows.
const TG_TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "blockquote",
];

/// What Telegram refuses in a `sendMessage`, with its descriptions: a tag its HTML mode
/// does not know, an empty text, and an inline URL button whose URL it will not link
/// (not `http(s)`/`tg`, or a host without a dot: `localhost`, intranet short names).
fn refusal(method: &str, body: &Value) -> Option<String> {
    if method != "sendmessage" && method != "editmessagetext" {
        return None;
    }
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        return Some("Bad Request: message text is empty".into());
    }
    if body.get("parse_mode").and_then(Value::as_str) == Some("HTML") {
        let mut rest = text;
        let mut offset = 0;
        while let Some(i) = rest.find('<') {
            let after = &rest[i + 1..];
            let name: String = after
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !TG_TAGS.contains(&name.to_ascii_lowercase().as_str()) {
                return Some(format!(
                    "Bad Request: can't parse entities: Unsupported start tag \"{name}\" at byte offset {}",
                    offset + i
                ));
            }
            offset += i + 1;
            rest = after;
        }
    }
    let rows = body
        .pointer("/reply_markup/inline_keyboard")
        .and_then(Value::as_array);
    for button in rows
        .into_iter()
        .flatten()
        .flat_map(|r| r.as_array().into_iter().flatten())
    {
        let Some(url) = button.get("url").and_then(Value::as_str) else {
            continue;
        };
        let ok = url::Url::parse(url).is_ok_and(|u| match u.scheme() {
            "http" | "https" => u.host_str().is_some_and(|h| h.contains('.')),
            "tg" => true,
            _ => false,
        });
        if !ok {
            return Some(format!(
                "Bad Request: inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
            ));
        }
    }
    None
}

#[derive(Default)]
struct TgState {
    requests: Vec<TgRequest>,
    script: VecDeque<Reply>,
    /// Method (lower-cased) → its own script, used before the general one.
    by_method: HashMap<String, VecDeque<Reply>>,
    /// Chat ids (`-100200`, `@name`) that do not exist: every request to them fails.
    missing_chats: HashSet<String>,
    /// When set, any other token is refused with 401, as Telegram does.
    token: Option<String>,
    /// The last message id given.
    last_message_id: i64,
    /// (chat id, message id) → (text, reply_markup) of each message sent, as edited.
    sent: HashMap<(String, i64), (Value, Value)>,
    /// Updates not yet confirmed by an offset past them.
    updates: Vec<Value>,
    last_update_id: i64,
    /// The `getUpdates` being held, by its number; a newer one ends it with 409, as
    /// Telegram does.
    poll_held: Option<u64>,
    polls: u64,
    /// Polls whose client gave up (asked again, or went away) before the answer.
    abandoned_polls: usize,
}

/// The bot the fake is: what `getMe` answers.
pub const BOT_USERNAME: &str = "protowatch_test_bot";

/// The title the fake gives a group or channel chat: `chat -100200`, `chat @name`.
pub fn chat_title(chat: &str) -> String {
    format!("chat {chat}")
}

/// A `chat_id` as the config writes it: a number as digits, a name as `@name`.
fn chat_key(v: &Value) -> Option<String> {
    v.as_i64()
        .map(|id| id.to_string())
        .or_else(|| v.as_str().map(String::from))
}

/// Serves `app` on a loopback port (0: any free one) from a runtime thread of its own,
/// until the returned sender is dropped.
fn serve(app: Router, port: u16) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    (addr_rx.recv().unwrap(), stop_tx)
}

/// A fake Telegram Bot API on a loopback port, with its own runtime thread.
pub struct FakeTelegram {
    pub url: String,
    state: Arc<Mutex<TgState>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeTelegram {
    pub fn start() -> FakeTelegram {
        Self::start_on(0)
    }

    pub fn start_on(port: u16) -> FakeTelegram {
        let state = Arc::new(Mutex::new(TgState::default()));
        let app = Router::new()
            .route("/{token}/{method}", post(handle))
            .with_state(state.clone());
        let (addr, stop_tx) = serve(app, port);
        FakeTelegram {
            url: format!("http://{addr}"),
            state,
            _stop: stop_tx,
        }
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Answers the next requests with these replies, in order; then `Ok` again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Answers the next requests of `method` (`getChat`, any case) with these replies,
    /// in order, before the general script; then as before.
    pub fn script_method(&self, method: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .unwrap()
            .by_method
            .entry(method.to_ascii_lowercase())
            .or_default()
            .extend(replies);
    }

    /// Makes `chat` (`-100200` or `@name`) one that does not exist: every request to it
    /// gets Telegram's 400 "Bad Request: chat not found".
    pub fn missing_chat(&self, chat: &str) {
        self.state
            .lock()
            .unwrap()
            .missing_chats
            .insert(chat.to_string());
    }

    /// Accepts only this token from now on; others get Telegram's 401 "Unauthorized".
    pub fn accept_only(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_string());
    }

    /// The requests of one method (`getChat`, any case).
    pub fn requests_of(&self, method: &str) -> Vec<TgRequest> {
        let method = method.to_ascii_lowercase();
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    pub fn requests(&self) -> Vec<TgRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The `sendMessage` requests only.
    pub fn messages(&self) -> Vec<TgRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "sendmessage")
            .collect()
    }

    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<TgRequest> {
        wait_until(timeout, || self.messages().len() >= n);
        self.messages()
    }

    fn push_update(&self, mut update: Value) -> i64 {
        let mut st = self.state.lock().unwrap();
        st.last_update_id += 1;
        let id = st.last_update_id;
        update["update_id"] = json!(id);
        st.updates.push(update);
        id
    }

    /// A user presses the button carrying `data` on a message the fake sent (`sent`,
    /// its `sendMessage` request); returns the callback query's id.
    pub fn press(&self, user: (u64, &str), sent: &TgRequest, data: &str) -> String {
        let chat = sent
            .body
            .get("chat_id")
            .and_then(chat_key)
            .unwrap_or_default();
        let mid = sent.message_id.expect("a message the fake sent");
        let text = sent.body.get("text").cloned().unwrap_or(Value::Null);
        let n = self.state.lock().unwrap().last_update_id + 1;
        let id = format!("cbq{n}");
        self.push_update(json!({
            "callback_query": {
                "id": id,
                "from": user_json(user),
                "message": {"message_id": mid, "date": 1_700_000_000, "chat": chat_json(&chat), "text": text},
                "chat_instance": "4242",
                "data": data,
            }
        }));
        id
    }

    /// A user writes `text` (a command) to the chat `chat`, optionally in a topic.
    pub fn say(&self, user: (u64, &str), chat: &str, thread: Option<i64>, text: &str) {
        let mid = {
            let mut st = self.state.lock().unwrap();
            st.last_message_id += 1;
            st.last_message_id
        };
        let len = text.split_whitespace().next().map_or(0, str::len);
        let mut message = json!({
            "message_id": mid, "date": 1_700_000_000, "chat": chat_json(chat),
            "from": user_json(user), "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len}],
        });
        if let Some(t) = thread {
            message["message_thread_id"] = json!(t);
            message["is_topic_message"] = json!(true);
        }
        self.push_update(json!({"message": message}));
    }

    /// `getUpdates` requests whose client gave up before the fake answered: it asked
    /// again while the first was still held. Telegram ends the older poll with 409, and
    /// so does the fake; a poller that does this after every quiet stretch is deaf to
    /// presses meanwhile.
    pub fn abandoned_polls(&self) -> usize {
        self.state.lock().unwrap().abandoned_polls
    }

    /// Updates given out and not yet confirmed by a later `getUpdates` offset.
    pub fn unconfirmed(&self) -> usize {
        self.state.lock().unwrap().updates.len()
    }

    /// The `answerCallbackQuery` requests for one callback query.
    pub fn answers_to(&self, callback_id: &str) -> Vec<TgRequest> {
        self.requests_of("answerCallbackQuery")
            .into_iter()
            .filter(|r| r.body["callback_query_id"] == callback_id)
            .collect()
    }

    /// The text and buttons a sent message shows now, after its edits.
    pub fn current(&self, sent: &TgRequest) -> Option<(String, Vec<String>)> {
        let chat = sent.body.get("chat_id").and_then(chat_key)?;
        let st = self.state.lock().unwrap();
        let (text, markup) = st.sent.get(&(chat, sent.message_id?))?;
        let labels = buttons(&json!({"reply_markup": markup}))
            .into_iter()
            .filter_map(|b| b["text"].as_str().map(String::from))
            .collect();
        Some((text.as_str().unwrap_or_default().to_string(), labels))
    }
}

fn user_json((id, username): (u64, &str)) -> Value {
    let mut u = json!({"id": id, "is_bot": false, "first_name": "Op"});
    if !username.is_empty() {
        u["username"] = json!(username.trim_start_matches('@'));
    }
    u
}

/// A chat as a message carries it: a positive id a private chat, else a supergroup.
fn chat_json(chat: &str) -> Value {
    match chat.parse::<i64>() {
        Ok(id) if id > 0 => json!({"id": id, "type": "private", "first_name": "Operator"}),
        Ok(id) => json!({"id": id, "type": "supergroup", "title": chat_title(chat)}),
        Err(_) => {
            json!({"id": -1_009_876_543_210_i64, "type": "channel", "title": chat_title(chat),
                         "username": chat.trim_start_matches('@')})
        }
    }
}

async fn handle(
    state: State<Arc<Mutex<TgState>>>,
    path: UrlPath<(String, String)>,
    raw: Bytes,
) -> axum::response::Response {
    match answer(state, path, raw).await {
        Some(a) => a.into_response(),
        // The head goes out, then the connection breaks before the body is whole: what
        // a client sees when the network path fails under a held poll.
        None => (
            StatusCode::OK,
            [("content-type", "application/json")],
            axum::body::Body::from_stream(futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("connection broken"))
            })),
        )
            .into_response(),
    }
}

/// The fake's answer; `None`: break the connection instead ([`Reply::Hangup`]).
async fn answer(
    State(state): State<Arc<Mutex<TgState>>>,
    UrlPath((token, method)): UrlPath<(String, String)>,
    raw: Bytes,
) -> Option<(StatusCode, axum::Json<Value>)> {
    let body: Value = serde_json::from_slice(&raw)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
    let method = method.to_ascii_lowercase();
    let token = token.strip_prefix("bot").unwrap_or(&token).to_string();
    let chat = body.get("chat_id").and_then(chat_key);
    let (reply, index) = {
        let mut st = state.lock().unwrap();
        st.requests.push(TgRequest {
            token: token.clone(),
            method: method.clone(),
            body: body.clone(),
            raw: raw.to_vec(),
            at: Instant::now(),
            message_id: None,
        });
        let index = st.requests.len() - 1;
        if st.token.as_ref().is_some_and(|t| *t != token) {
            return Some((
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
            ));
        }
        let scripted = st.by_method.get_mut(&method).and_then(VecDeque::pop_front);
        let refused = refusal(&method, &body);
        let reply = match scripted.or_else(|| st.script.pop_front()) {
            Some(reply) => reply,
            None if refused.is_some() => Reply::Refused(refused.unwrap_or_default()),
            None if chat.as_ref().is_some_and(|c| st.missing_chats.contains(c)) => {
                Reply::BadRequest("Bad Request: chat not found")
            }
            None => Reply::Ok,
        };
        (reply, index)
    };
    if matches!(reply, Reply::Ok)
        && let Some(answer) = bot_side(&state, &method, &body, chat.as_deref(), index).await
    {
        return Some(answer);
    }
    Some(match reply {
        Reply::Hangup => return None,
        Reply::Ok if method == "getme" => (
            StatusCode::OK,
            axum::Json(json!({
                "ok": true,
                "result": {
                    "id": 123456, "is_bot": true, "first_name": "Protowatch test",
                    "username": BOT_USERNAME, "can_join_groups": true,
                    "can_read_all_group_messages": false, "supports_inline_queries": false,
                    "can_connect_to_business": false, "has_main_web_app": false,
                }
            })),
        ),
        Reply::Ok if method == "getchat" => (
            StatusCode::OK,
            axum::Json(json!({"ok": true, "result": chat_object(chat.as_deref().unwrap_or(""))})),
        ),
        Reply::Ok => (
            StatusCode::OK,
            axum::Json(json!({
                "ok": true,
                "result": {
                    "message_id": 1,
                    "date": 1_700_000_000,
                    "chat": {"id": 1, "type": "private", "first_name": "op"},
                    "from": {"id": 2, "is_bot": true, "first_name": "bot"},
                    "text": body.get("text").cloned().unwrap_or(Value::Null),
                }
            })),
        ),
        Reply::TooManyRequests { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({
                "ok": false, "error_code": 429,
                "description": format!("Too Many Requests: retry after {retry_after}"),
                "parameters": {"retry_after": retry_after}
            })),
        ),
        Reply::BadRequest(desc) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"ok": false, "error_code": 400, "description": desc})),
        ),
        Reply::Refused(desc) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"ok": false, "error_code": 400, "description": desc})),
        ),
        Reply::Conflict => (
            StatusCode::CONFLICT,
            axum::Json(json!({"ok": false, "error_code": 409,
                "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"})),
        ),
        Reply::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(
                json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}),
            ),
        ),
    })
}

type Answer = (StatusCode, axum::Json<Value>);

fn ok(result: Value) -> Answer {
    (
        StatusCode::OK,
        axum::Json(json!({"ok": true, "result": result})),
    )
}

fn bad(desc: &str) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"ok": false, "error_code": 400, "description": desc})),
    )
}

/// The methods of a two-way bot, and the message ids of what is sent; `None` for the
/// methods the plain answers cover.
async fn bot_side(
    state: &Arc<Mutex<TgState>>,
    method: &str,
    body: &Value,
    chat: Option<&str>,
    index: usize,
) -> Option<Answer> {
    match method {
        "answercallbackquery" | "setmycommands" | "deletewebhook" => Some(ok(json!(true))),
        "getupdates" => {
            let offset = body.get("offset").and_then(Value::as_i64);
            let timeout = body.get("timeout").and_then(Value::as_u64).unwrap_or(0);
            let end = Instant::now() + Duration::from_secs(timeout);
            let me = {
                let mut st = state.lock().unwrap();
                st.polls += 1;
                if st.poll_held.is_some() {
                    st.abandoned_polls += 1;
                }
                st.poll_held = Some(st.polls);
                st.polls
            };
            loop {
                {
                    let mut st = state.lock().unwrap();
                    if st.poll_held != Some(me) {
                        return Some((
                            StatusCode::CONFLICT,
                            axum::Json(json!({"ok": false, "error_code": 409,
                                "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"})),
                        ));
                    }
                    if let Some(o) = offset {
                        st.updates
                            .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= o);
                    }
                    if !st.updates.is_empty() || Instant::now() >= end {
                        st.poll_held = None;
                        return Some(ok(json!(st.updates.clone())));
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        "editmessagetext" | "editmessagereplymarkup" => {
            let chat = chat?.to_string();
            let mid = body.get("message_id").and_then(Value::as_i64)?;
            let mut st = state.lock().unwrap();
            let Some((text, markup)) = st.sent.get(&(chat.clone(), mid)).cloned() else {
                return Some(bad("Bad Request: message to edit not found"));
            };
            let new_text = if method == "editmessagetext" {
                body.get("text").cloned().unwrap_or(Value::Null)
            } else {
                text.clone()
            };
            let new_markup = body.get("reply_markup").cloned().unwrap_or(Value::Null);
            if new_text == text && new_markup == markup {
                return Some(bad(
                    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                ));
            }
            st.sent
                .insert((chat.clone(), mid), (new_text.clone(), new_markup));
            Some(ok(json!({
                "message_id": mid, "date": 1_700_000_000, "edit_date": 1_700_000_001,
                "chat": chat_json(&chat),
                "from": {"id": 123456, "is_bot": true, "first_name": "bot"},
                "text": new_text,
            })))
        }
        "sendmessage" | "sendphoto" | "senddocument" => {
            let chat = chat.unwrap_or("1").to_string();
            let mut st = state.lock().unwrap();
            st.last_message_id += 1;
            let mid = st.last_message_id;
            let text = body.get("text").cloned().unwrap_or(Value::Null);
            let markup = body.get("reply_markup").cloned().unwrap_or(Value::Null);
            st.sent.insert((chat.clone(), mid), (text.clone(), markup));
            if let Some(r) = st.requests.get_mut(index) {
                r.message_id = Some(mid);
            }
            Some(ok(json!({
                "message_id": mid,
                "date": 1_700_000_000,
                "chat": chat_json(&chat),
                "from": {"id": 123456, "is_bot": true, "first_name": "bot"},
                "text": text,
            })))
        }
        _ => None,
    }
}

/// A `getChat` answer as Telegram gives it: `@name` a public channel, an id from
/// `-100…` a supergroup, another negative id a group, a positive one a private chat.
fn chat_object(chat: &str) -> Value {
    let common = json!({
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {"unlimited_gifts": false, "limited_gifts": false,
                                "unique_gifts": false, "premium_subscription": false},
    });
    let mut object = match chat.strip_prefix('@') {
        Some(name) => json!({"id": -1_009_876_543_210_i64, "type": "channel",
                             "title": chat_title(chat), "username": name}),
        None => {
            let id: i64 = chat.parse().unwrap_or(0);
            if id > 0 {
                json!({"id": id, "type": "private", "first_name": "Operator"})
            } else if chat.starts_with("-100") {
                json!({"id": id, "type": "supergroup", "title": chat_title(chat)})
            } else {
                json!({"id": id, "type": "group", "title": chat_title(chat)})
            }
        }
    };
    if let (Some(o), Some(c)) = (object.as_object_mut(), common.as_object()) {
        o.extend(c.clone());
    }
    object
}

pub const TOKEN: &str = "123456:TEST-token_abc";

/// Writes `config` as `config.json` in `dir` and returns its path.
pub fn write_config(dir: &Path, config: &Value) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(config).unwrap()).unwrap();
    path
}

/// The binary under test.
pub fn protowatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_protowatch"));
    cmd.env_remove("PROTOWATCH_CONFIG").env("RUST_LOG", "info");
    cmd
}

/// Starts `cmd`. Wine now and then fails a process start with "internal error"
/// (ERROR_INTERNAL_ERROR); a second try works, so the Windows runs try three times.
pub fn spawn(cmd: &mut Command) -> Child {
    let mut last = None;
    for _ in 0..3 {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    panic!("cannot start {cmd:?}: {last:?}")
}

/// Appends `text` to `path` in one write.
pub fn append(path: &Path, text: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text).unwrap();
}

/// A running `protowatch --config … run`, whose config has `"api": {"listen":
/// "127.0.0.1:0"}` (a port of its own, so parallel tests' agents never meet). It is up
/// once its API listens; dropped, it is killed; [`Agent::stop`] is a graceful stop.
pub struct Agent {
    child: std::process::Child,
    /// Where its HTTP API listens.
    pub addr: std::net::SocketAddr,
}

impl Agent {
    pub fn start(config: &Path) -> Agent {
        Self::start_with(config, std::process::Stdio::null())
    }

    /// As [`Agent::start`], with its log (stderr) written to `log`.
    pub fn start_logging_to(config: &Path, log: &Path) -> Agent {
        let file = std::fs::File::create(log).expect("create the agent's log file");
        Self::start_with(config, file.into())
    }

    /// Starts `cmd`, a `protowatch … run` for `config`, with its log written to `log`.
    pub fn start_command(mut cmd: Command, config: &Path, log: &Path) -> Agent {
        let file = std::fs::File::create(log).expect("create the agent's log file");
        cmd.stdout(std::process::Stdio::null()).stderr(file);
        Self::wait_up(cmd.spawn().expect("start protowatch run"), config)
    }

    fn start_with(config: &Path, stderr: std::process::Stdio) -> Agent {
        let child = protowatch()
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start protowatch run");
        Self::wait_up(child, config)
    }

    fn wait_up(child: Child, config: &Path) -> Agent {
        let addr_file = config
            .parent()
            .expect("the config's folder")
            .join(".protowatch/api.addr");
        // The file may be seen before its text is written (an older agent wrote it in
        // place): wait for an address.
        let read = || -> Option<SocketAddr> {
            std::fs::read_to_string(&addr_file)
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        assert!(
            wait_until(Duration::from_secs(10), || read().is_some()),
            "the agent did not start"
        );
        let addr = read().expect("the API's address");
        let token_file = addr_file.with_file_name("api-token");
        if let Ok(t) = std::fs::read_to_string(&token_file) {
            tokens().lock().unwrap().insert(addr, t.trim().to_string());
        }
        // The watcher's first scan runs right after.
        std::thread::sleep(Duration::from_millis(300));
        Agent { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits for the agent to finish what it was doing.
    #[cfg(unix)]
    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on a fresh connection: status, body as JSON (null if it is
/// not), and body as text.
/// The API token of each agent a test started, by its address: [`http`] presents it
/// the way the commands do, so that a test speaks of what it tests, not of the token.
fn tokens() -> &'static Mutex<HashMap<SocketAddr, String>> {
    static TOKENS: std::sync::OnceLock<Mutex<HashMap<SocketAddr, String>>> =
        std::sync::OnceLock::new();
    TOKENS.get_or_init(Default::default)
}

/// A request to an agent's API with its token (unless `headers` carry an
/// `Authorization` of their own); see [`http_anon`] for one without.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value, String) {
    let token = tokens().lock().unwrap().get(&addr).cloned();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(a) = &auth
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        all.push(("Authorization", a));
    }
    http_anon(addr, method, path, &all, body)
}

/// A request with exactly the headers given (and `Host: localhost` unless they name
/// another).
pub fn http_anon(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: localhost\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A server may answer (413) before reading a big body, and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, json, body)
}

/// One request a [`FakeHttp`] received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl HttpRequest {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// An answer a [`FakeHttp`] gives: status, headers, body.
type HttpReply = (u16, Vec<(String, String)>, String);

#[derive(Default)]
struct HttpState {
    requests: Vec<HttpRequest>,
    /// Answers to give, in order; then 200 with `ok`.
    script: VecDeque<HttpReply>,
}

/// A loopback HTTP server that records every request (any method, any path) and answers
/// as the test scripts it: a stand-in for a webhook endpoint.
pub struct FakeHttp {
    pub url: String,
    state: Arc<Mutex<HttpState>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeHttp {
    pub fn start() -> FakeHttp {
        let state = Arc::new(Mutex::new(HttpState::default()));
        let app = Router::new().fallback(record).with_state(state.clone());
        let (addr, stop_tx) = serve(app, 0);
        FakeHttp {
            url: format!("http://{addr}"),
            state,
            _stop: stop_tx,
        }
    }

    /// The next answers: status, headers, body.
    pub fn script(
        &self,
        replies: impl IntoIterator<Item = (u16, Vec<(&'static str, &'static str)>, &'static str)>,
    ) {
        let mut st = self.state.lock().unwrap();
        for (status, headers, body) in replies {
            let headers = headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            st.script.push_back((status, headers, body.to_string()));
        }
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Waits until `n` requests have come, and returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<HttpRequest> {
        wait_until(timeout, || self.requests().len() >= n);
        self.requests()
    }
}

async fn record(
    State(state): State<Arc<Mutex<HttpState>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let (status, extra, text) = {
        let mut st = state.lock().unwrap();
        st.requests.push(HttpRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
        });
        st.script
            .pop_front()
            .unwrap_or((200, Vec::new(), "ok".to_string()))
    };
    let mut response = (StatusCode::from_u16(status).unwrap(), text).into_response();
    for (k, v) in extra {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    response
}
