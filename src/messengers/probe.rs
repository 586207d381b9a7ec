//! What a probe of a service reports: one [`Check`] per step of the way a message takes
//! (connect, EHLO, TLS, AUTH, QUIT; getMe, getChat), each passed, failed or skipped.
//!
//! The steps are reported one by one as they finish, not collected: an operator probing a
//! server that hangs sees how far it got while it waits. A failure is a value here, not
//! an error: the probe's job is to find failures and say so, and its caller decides what
//! they mean for the exit code. Like every message a messenger makes, a verdict's text
//! never contains a secret.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::messengers::Service;

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed, with what was learned on the way (the TLS version, the bot's name).
    Ok(Option<String>),
    /// Not tried because the config does not ask for it; not a failure.
    Skipped(String),
    /// Failed, with the reason in the server's own words.
    Failed(String),
}

/// One step of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub service: Service,
    /// What was tried, with its target: `connect smtp.example.org:587`.
    pub step: String,
    pub verdict: Verdict,
}

impl Check {
    pub fn ok(service: Service, step: impl Into<String>, detail: Option<String>) -> Check {
        Check {
            service,
            step: step.into(),
            verdict: Verdict::Ok(detail),
        }
    }

    pub fn skipped(service: Service, step: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            service,
            step: step.into(),
            verdict: Verdict::Skipped(why.into()),
        }
    }

    pub fn failed(service: Service, step: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            service,
            step: step.into(),
            verdict: Verdict::Failed(why.into()),
        }
    }

    pub fn is_failed(&self) -> bool {
        matches!(self.verdict, Verdict::Failed(_))
    }
}

/// `mail      STARTTLS                       ok  (TLS 1.3, TLS13_AES_256_GCM_SHA384)`:
/// fixed columns so a column of `ok` and the odd `FAILED` stand out.
impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<9} {:<34} ", self.service.as_str(), self.step)?;
        match &self.verdict {
            Verdict::Ok(None) => f.write_str("ok"),
            Verdict::Ok(Some(detail)) => write!(f, "ok  ({detail})"),
            Verdict::Skipped(why) => write!(f, "skipped  ({why})"),
            Verdict::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

/// An error with the causes its `Display` leaves out ("error sending request: client
/// error (Connect): tcp connect error: Connection refused"): what an operator needs to
/// tell a wrong address from a firewall. Not yet scrubbed of secrets.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// Runs one step bounded by the service's `timeout_s`: a server that accepts and then
/// says nothing must fail the step it hangs in, not hang the probe.
pub(crate) async fn within<T, E>(
    timeout: Duration,
    step: impl Future<Output = Result<T, E>>,
    describe: impl FnOnce(E) -> String,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(describe(e)),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_a_table() {
        let ok = Check::ok(Service::Mail, "STARTTLS", Some("TLS 1.3".into()));
        assert_eq!(
            ok.to_string(),
            format!("mail      {:<34} ok  (TLS 1.3)", "STARTTLS")
        );
        let failed = Check::failed(Service::Telegram, "getMe", "Invalid bot token");
        assert!(failed.to_string().ends_with(" FAILED: Invalid bot token"));
        assert!(failed.is_failed() && !ok.is_failed());
    }
}
