//! The commands' way to the running agent: its HTTP API, found through the address the
//! agent writes into its state folder while it holds the folder's lock — so a command
//! reaches the agent of its own config, never another one on the same PC — with the
//! token from the config or the state folder, read with the rights of whoever runs the
//! command. Not being allowed to look is said as such, never taken for "no agent".
//! Before the token goes anywhere, the server at that address proves it knows it
//! (`api::hello`): a port is no proof of who holds it.

use std::time::Duration;

use serde_json::Value;

use crate::config::Config;

pub struct AgentClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The agent answered with an error: its status and `{"error"}` text.
    #[error("{message}")]
    Refused { status: u16, message: String },
    #[error("the agent at {base} did not answer: {source}")]
    Unreachable {
        base: String,
        source: reqwest::Error,
    },
    /// This user may not use the agent: the state folder or the token is not theirs.
    #[error("{0}")]
    Access(String),
}

impl AgentClient {
    /// The running agent of this config, if one answers within a second; an error
    /// when this user may not tell (or may not use it).
    pub async fn find(config: &Config) -> Result<Option<AgentClient>, ClientError> {
        // Only the agent that holds this state folder: an address file left by one that
        // was killed may name a port that another program uses now.
        match crate::store::AgentLock::is_held(&config.state_dir) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            // Whoever may not look into the state folder may not read the token in it.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ClientError::Access(
                    crate::api::token::TokenError::Denied {
                        path: crate::api::token::path(&config.state_dir),
                    }
                    .to_string(),
                ));
            }
            Err(e) => {
                return Err(ClientError::Access(format!(
                    "cannot tell whether an agent runs for {}: {e}",
                    config.state_dir.display()
                )));
            }
        }
        let token = crate::api::token::for_client(config)
            .map_err(|e| ClientError::Access(e.to_string()))?;
        let Some(addr) = crate::api::running_addr(&config.state_dir) else {
            return Ok(None);
        };
        let Ok(http) = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(1))
            .build()
        else {
            return Ok(None);
        };
        let client = AgentClient {
            base: format!("http://{addr}"),
            token: token.map(|t| t.expose().to_string()),
            http,
        };
        if let Some(token) = &client.token
            && !client.proves(token, addr).await
        {
            eprintln!(
                "protowatch: warning: the server at {addr} did not prove that it is this config's agent; \
                 nothing was sent to it (is another program on that port?)"
            );
            return Ok(None);
        }
        match client.get("/api/routes").await {
            Ok(_) => Ok(Some(client)),
            Err(ClientError::Refused {
                status: 401,
                message,
            }) => Err(ClientError::Access(format!(
                "the agent refused this command's token ({message}); is {} the token of this agent?",
                crate::api::token::path(&config.state_dir).display()
            ))),
            Err(_) => Ok(None),
        }
    }

    /// Whether the server at `addr` knows `token` (`GET /api/hello`, asked without it).
    async fn proves(&self, token: &str, addr: std::net::SocketAddr) -> bool {
        let nonce = crate::api::hello::nonce();
        let asked = self
            .http
            .get(format!("{}/api/hello", self.base))
            .query(&[("nonce", &nonce)])
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let Ok(resp) = asked else { return false };
        let Ok(body) = resp.json::<Value>().await else {
            return false;
        };
        body["proof"]
            .as_str()
            .is_some_and(|p| crate::api::hello::verify(token, &nonce, addr, p))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let unreachable = |source| ClientError::Unreachable {
            base: self.base.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(ClientError::Refused {
                status: status.as_u16(),
                message: body["error"]
                    .as_str()
                    .unwrap_or(status.canonical_reason().unwrap_or("error"))
                    .to_string(),
            })
        }
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}
