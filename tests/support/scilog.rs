//! A loopback SciLog (`/api/v1`) that answers as SciLog's LoopBack server does
//! (`paulscherrerinstitute/scilog`, `api/src/controllers`) and refuses what it refuses:
//!
//! - `POST /users/login {"principal", "password"}`: a token, or 401 "Invalid email or
//!   password."; a body without both strings is 422.
//! - every other request needs `Authorization: Bearer <token>` of a live token (401
//!   "Authorization header not found." / "Error verifying token : jwt expired"); the
//!   test can expire every token, as a server restart or a token's age does.
//! - `GET /logbooks/{id}` (404 `ENTITY_NOT_FOUND`), `GET /logbooks?filter=` (the SDK's
//!   `get_logbooks`, `where.and` of equalities).
//! - `POST /filesnippet/files`: multipart with a `file` part (422 "A file must be
//!   provided") and `fields`, JSON whose keys must be the Filesnippet model's
//!   (`validateFieldsVSModel`: 422 `VALIDATION_FAILED`); answers the file snippet with
//!   its `id` and `accessHash`.
//! - `POST /basesnippets`: a JSON object without `id`; ACL fields lists of strings; a
//!   `parentId` that is a logbook; `files[]` naming uploaded files by `fileId` with their
//!   `accessHash`; a `fileHash` the HTML names. Anything else is 422.
//!
//! The Python SDK (`scilog` on PyPI) is run against it in `tests/scilog.rs`, so that the
//! fake and the real client agree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The Filesnippet model's properties: what `fields` may name.
const FILESNIPPET_KEYS: &[&str] = &[
    "id",
    "snippetType",
    "isPrivate",
    "defaultOrder",
    "createdAt",
    "createdBy",
    "updatedAt",
    "expiresAt",
    "updatedBy",
    "ownerGroup",
    "accessGroups",
    "createACL",
    "readACL",
    "updateACL",
    "deleteACL",
    "shareACL",
    "adminACL",
    "calculatedACLs",
    "parentId",
    "tags",
    "dashboardName",
    "versionable",
    "deleted",
    "name",
    "description",
    "filename",
    "contentSize",
    "contentSha256",
    "fileExtension",
    "contentType",
    "accessHash",
    "_fileId",
];
const ACLS: [&str; 6] = [
    "createACL",
    "readACL",
    "updateACL",
    "deleteACL",
    "shareACL",
    "adminACL",
];

/// A file as the fake stored it.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub snippet: Value,
    pub filename: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct ScilogState {
    users: HashMap<String, String>,
    live_tokens: Vec<String>,
    /// When each token was given out, for [`FakeScilog::token_lifetime`].
    issued: HashMap<String, std::time::Instant>,
    /// A token older than this is refused as expired, as SciLog's JWTs expire.
    lifetime: Option<std::time::Duration>,
    logins: usize,
    logbooks: HashMap<String, Value>,
    files: Vec<StoredFile>,
    entries: Vec<Value>,
    /// `(method, path, status)` of every request.
    log: Vec<(String, String, u16)>,
    /// Statuses to answer the next `POST /basesnippets` with, before taking it.
    entry_failures: Vec<u16>,
    next_id: u64,
}

pub struct FakeScilog {
    /// The API's base URL, `http://127.0.0.1:<port>/api/v1`.
    pub url: String,
    state: Arc<Mutex<ScilogState>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeScilog {
    pub fn start() -> FakeScilog {
        let state = Arc::new(Mutex::new(ScilogState::default()));
        let api = Router::new()
            .route("/users/login", post(login))
            .route("/logbooks", get(logbooks))
            .route("/logbooks/{id}", get(logbook))
            .route("/filesnippet/files", post(upload))
            .route("/basesnippets", post(entry))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": {"statusCode": 404, "name": "NotFoundError",
                                                 "message": "Endpoint not found"}})),
                )
            })
            .with_state(state.clone());
        let app = Router::new().nest("/api/v1", api);
        let (addr, stop) = super::serve(app, 0);
        FakeScilog {
            url: format!("http://{addr}/api/v1"),
            state,
            _stop: stop,
        }
    }

    pub fn add_user(&self, principal: &str, password: &str) {
        let mut st = self.state.lock().unwrap();
        st.users.insert(principal.into(), password.into());
    }

    /// A logbook with ACLs as SciLog gives a beamline's logbook.
    pub fn add_logbook(&self, id: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        st.logbooks.insert(
            id.into(),
            json!({
                "id": id, "snippetType": "logbook", "name": name, "description": "",
                "ownerGroup": "p12345",
                "createACL": ["p12345"], "readACL": ["p12345", "bl-staff"],
                "updateACL": ["p12345"], "deleteACL": ["admin"], "shareACL": ["p12345"],
                "adminACL": ["admin"], "isPrivate": false, "tags": [],
                "createdAt": "2026-01-01T00:00:00.000Z", "createdBy": "admin",
            }),
        );
    }

    /// A token that the agent may be configured with.
    pub fn issue_token(&self) -> String {
        let mut st = self.state.lock().unwrap();
        let t = format!("tok-{:016x}", fastrand::u64(..));
        st.live_tokens.push(t.clone());
        t
    }

    /// Tokens given out from now on expire after `d` ("jwt expired"), as the JWTs
    /// of a real SciLog do (hours there).
    pub fn token_lifetime(&self, d: std::time::Duration) {
        self.state.lock().unwrap().lifetime = Some(d);
    }

    /// Every token given out so far is refused from now on ("jwt expired").
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().live_tokens.clear();
    }

    /// The next `POST /basesnippets` are answered with these statuses.
    pub fn fail_entries(&self, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .entry_failures
            .extend_from_slice(statuses);
    }

    pub fn logins(&self) -> usize {
        self.state.lock().unwrap().logins
    }

    pub fn entries(&self) -> Vec<Value> {
        self.state.lock().unwrap().entries.clone()
    }

    pub fn files(&self) -> Vec<StoredFile> {
        self.state.lock().unwrap().files.clone()
    }

    pub fn log(&self) -> Vec<(String, String, u16)> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn wait_for_entries(&self, n: usize, timeout: std::time::Duration) -> Vec<Value> {
        super::wait_until(timeout, || self.entries().len() >= n);
        self.entries()
    }
}

fn error(status: u16, name: &str, message: &str, extra: Value) -> Response {
    let mut e = json!({"statusCode": status, "name": name, "message": message});
    if let (Some(o), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        o.extend(x.clone());
    }
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({ "error": e })),
    )
        .into_response()
}

fn invalid(details: Value) -> Response {
    error(
        422,
        "UnprocessableEntityError",
        "The request body is invalid. See error object `details` property for more info.",
        json!({"code": "VALIDATION_FAILED", "details": details}),
    )
}

fn note(st: &Arc<Mutex<ScilogState>>, method: &str, path: &str, r: &Response) {
    st.lock()
        .unwrap()
        .log
        .push((method.into(), path.into(), r.status().as_u16()));
}

/// The LoopBack JWT check: the header, then a live token.
fn authorized(st: &Arc<Mutex<ScilogState>>, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(h) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(Box::new(error(
            401,
            "UnauthorizedError",
            "Authorization header not found.",
            json!({}),
        )));
    };
    let Some(token) = h.strip_prefix("Bearer ") else {
        return Err(Box::new(error(
            401,
            "UnauthorizedError",
            "Authorization header is not of type 'Bearer'.",
            json!({}),
        )));
    };
    let live = {
        let s = st.lock().unwrap();
        let young = match (s.lifetime, s.issued.get(token)) {
            (Some(life), Some(at)) => at.elapsed() < life,
            _ => true,
        };
        young && s.live_tokens.iter().any(|t| t == token)
    };
    if live {
        Ok(())
    } else {
        Err(Box::new(error(
            401,
            "UnauthorizedError",
            "Error verifying token : jwt expired",
            json!({}),
        )))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn login(
    State(st): State<Arc<Mutex<ScilogState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = (|| {
        if !is_json(&headers) {
            return error(
                415,
                "UnsupportedMediaTypeError",
                "Content-type is not supported.",
                json!({}),
            );
        }
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => return error(400, "BadRequestError", "Unexpected token", json!({})),
        };
        let (Some(p), Some(pw)) = (v["principal"].as_str(), v["password"].as_str()) else {
            return invalid(json!([{"path": "", "code": "required",
                                   "message": "must have required property 'principal' and 'password'"}]));
        };
        let mut s = st.lock().unwrap();
        if s.users.get(p).map(String::as_str) != Some(pw) {
            drop(s);
            return error(
                401,
                "UnauthorizedError",
                "Invalid email or password.",
                json!({}),
            );
        }
        let t = format!("tok-{:016x}", fastrand::u64(..));
        s.live_tokens.push(t.clone());
        s.issued.insert(t.clone(), std::time::Instant::now());
        s.logins += 1;
        (StatusCode::OK, axum::Json(json!({ "token": t }))).into_response()
    })();
    note(&st, "POST", "/users/login", &r);
    r
}

async fn logbook(
    State(st): State<Arc<Mutex<ScilogState>>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let r = match authorized(&st, &headers) {
        Err(r) => *r,
        Ok(()) => match st.lock().unwrap().logbooks.get(&id).cloned() {
            Some(lb) => (StatusCode::OK, axum::Json(lb)).into_response(),
            None => error(
                404,
                "Error",
                &format!("Entity not found: Logbook with id \"{id}\""),
                json!({"code": "ENTITY_NOT_FOUND"}),
            ),
        },
    };
    note(&st, "GET", &format!("/logbooks/{id}"), &r);
    r
}

/// `?filter={"where": {"and": [{"name": "…"}]}}`, as the SDK's `get_logbooks` sends it.
async fn logbooks(
    State(st): State<Arc<Mutex<ScilogState>>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let r = match authorized(&st, &headers) {
        Err(r) => *r,
        Ok(()) => {
            let filter: Value = q
                .get("filter")
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or(json!({}));
            let conds: Vec<Value> = filter["where"]["and"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let st2 = st.lock().unwrap();
            let found: Vec<Value> = st2
                .logbooks
                .values()
                .filter(|lb| {
                    conds.iter().all(|c| {
                        c.as_object()
                            .is_none_or(|o| o.iter().all(|(k, v)| lb.get(k) == Some(v)))
                    })
                })
                .cloned()
                .collect();
            (StatusCode::OK, axum::Json(Value::Array(found))).into_response()
        }
    };
    note(&st, "GET", "/logbooks", &r);
    r
}

/// One part of a `multipart/form-data` body: name, filename, content type, bytes.
type Part = (String, Option<String>, String, Vec<u8>);

/// The parts of a `multipart/form-data` body.
fn parts(headers: &HeaderMap, body: &[u8]) -> Option<Vec<Part>> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    let boundary = ct
        .strip_prefix("multipart/form-data")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"')
        .to_string();
    let delim = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut rest = body;
    // Skip to the first delimiter.
    let start = find(rest, &delim)?;
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(out);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let next = find(rest, &[b"\r\n".as_slice(), &delim].concat())?;
        let data = rest[..next].to_vec();
        rest = &rest[next + 2 + delim.len()..];
        let mut name = String::new();
        let mut filename = None;
        let mut ctype = String::new();
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-disposition:") {
                for p in line.split(';').skip(1) {
                    let (k, v) = p.trim().split_once('=')?;
                    let v = v.trim_matches('"').to_string();
                    match k {
                        "name" => name = v,
                        "filename" => filename = Some(v),
                        _ => {}
                    }
                }
            } else if lower.starts_with("content-type:") {
                ctype = line["content-type:".len()..].trim().to_string();
            }
        }
        out.push((name, filename, ctype, data));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn upload(
    State(st): State<Arc<Mutex<ScilogState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = match authorized(&st, &headers) {
        Err(r) => *r,
        Ok(()) => (|| {
            let Some(parts) = parts(&headers, &body) else {
                return error(
                    400,
                    "BadRequestError",
                    "bad content-type header, no multipart boundary",
                    json!({}),
                );
            };
            let Some(file) = parts.iter().find(|p| p.0 == "file" && p.1.is_some()) else {
                return error(422, "ValidationError", "A file must be provided", json!({}));
            };
            let fields: Value = match parts.iter().find(|p| p.0 == "fields") {
                Some(f) => match serde_json::from_slice(&f.3) {
                    Ok(v) => v,
                    Err(e) => return error(500, "SyntaxError", &e.to_string(), json!({})),
                },
                None => json!({}),
            };
            let Some(obj) = fields.as_object() else {
                return error(500, "TypeError", "fields is not an object", json!({}));
            };
            let unknown: Vec<&String> = obj
                .keys()
                .filter(|k| !FILESNIPPET_KEYS.contains(&k.as_str()))
                .collect();
            if !unknown.is_empty() {
                let messages: serde_json::Map<String, Value> = unknown
                    .iter()
                    .map(|k| ((*k).clone(), json!(["is not defined in the model"])))
                    .collect();
                return error(
                    422,
                    "Error",
                    "Validation error",
                    json!({"code": "VALIDATION_FAILED", "details": {"messages": messages}}),
                );
            }
            let mut s = st.lock().unwrap();
            s.next_id += 1;
            let id = format!("file{:04}", s.next_id);
            let mut snippet = obj.clone();
            snippet.remove("id");
            snippet.insert("id".into(), json!(id));
            snippet.insert(
                "accessHash".into(),
                json!(format!("{:032x}", fastrand::u128(..))),
            );
            snippet.insert("contentType".into(), json!(file.2));
            snippet.insert("filename".into(), json!(file.1));
            snippet.insert("contentSize".into(), json!(file.3.len()));
            snippet.insert("_fileId".into(), json!(format!("grid{}", s.next_id)));
            let snippet = Value::Object(snippet);
            s.files.push(StoredFile {
                snippet: snippet.clone(),
                filename: file.1.clone().unwrap_or_default(),
                content_type: file.2.clone(),
                data: file.3.clone(),
            });
            (StatusCode::OK, axum::Json(snippet)).into_response()
        })(),
    };
    note(&st, "POST", "/filesnippet/files", &r);
    r
}

async fn entry(
    State(st): State<Arc<Mutex<ScilogState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = match authorized(&st, &headers) {
        Err(r) => *r,
        Ok(()) => (|| {
            if let Some(status) = {
                let mut s = st.lock().unwrap();
                (!s.entry_failures.is_empty()).then(|| s.entry_failures.remove(0))
            } {
                return error(status, "Error", "scripted failure", json!({}));
            }
            if !is_json(&headers) {
                return error(
                    415,
                    "UnsupportedMediaTypeError",
                    "Content-type is not supported.",
                    json!({}),
                );
            }
            let v: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => return error(400, "BadRequestError", "Unexpected token", json!({})),
            };
            match check_entry(&st, &v) {
                Ok(()) => {}
                Err(details) => return invalid(details),
            }
            let mut s = st.lock().unwrap();
            s.next_id += 1;
            let mut stored = v.clone();
            stored["id"] = json!(format!("par{:04}", s.next_id));
            s.entries.push(stored.clone());
            (StatusCode::OK, axum::Json(stored)).into_response()
        })(),
    };
    note(&st, "POST", "/basesnippets", &r);
    r
}

/// What the model's schema and SciLog's own checks refuse in a new snippet.
fn check_entry(st: &Arc<Mutex<ScilogState>>, v: &Value) -> Result<(), Value> {
    let bad = |path: &str, message: &str| Err(json!([{"path": path, "message": message}]));
    let Some(o) = v.as_object() else {
        return bad("", "must be object");
    };
    if o.contains_key("id") {
        return bad("", "must NOT have additional properties (id)");
    }
    for (key, kind) in [
        ("snippetType", "string"),
        ("linkType", "string"),
        ("parentId", "string"),
        ("textcontent", "string"),
    ] {
        if let Some(x) = o.get(key)
            && !x.is_string()
        {
            return bad(&format!("/{key}"), &format!("must be {kind}"));
        }
    }
    for key in ACLS.iter().chain(&["tags"]) {
        if let Some(x) = o.get(*key)
            && !x.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        {
            return bad(&format!("/{key}"), "must be array of strings");
        }
    }
    let s = st.lock().unwrap();
    if let Some(parent) = o.get("parentId").and_then(Value::as_str)
        && !s.logbooks.contains_key(parent)
    {
        return bad("/parentId", "no such parent snippet");
    }
    let text = o.get("textcontent").and_then(Value::as_str).unwrap_or("");
    if let Some(files) = o.get("files") {
        let Some(files) = files.as_array() else {
            return bad("/files", "must be array");
        };
        for (i, f) in files.iter().enumerate() {
            let (Some(id), Some(hash), Some(fhash)) = (
                f["fileId"].as_str(),
                f["accessHash"].as_str(),
                f["fileHash"].as_str(),
            ) else {
                return bad(
                    &format!("/files/{i}"),
                    "needs fileId, accessHash and fileHash",
                );
            };
            let known = s
                .files
                .iter()
                .any(|x| x.snippet["id"] == id && x.snippet["accessHash"] == hash);
            if !known {
                return bad(
                    &format!("/files/{i}"),
                    "no uploaded file with this id and accessHash",
                );
            }
            if !text.contains(fhash) {
                return bad(
                    &format!("/files/{i}/fileHash"),
                    "not referenced by the textcontent",
                );
            }
        }
    }
    Ok(())
}
