//! ID (RFC 2971).

use super::session::Session;
use crate::core::{Completion, Response};

impl Session<'_> {
    /// RFC 2971 §3.1: the server answers with its own identification; the client's is
    /// only logged (field names and values are client-chosen: never trusted).
    pub(super) fn id(&mut self, params: Option<&Vec<(String, Option<String>)>>) -> Completion {
        if let Some(params) = params {
            let name = params
                .iter()
                .find(|(field, _)| field.eq_ignore_ascii_case("name"))
                .and_then(|(_, value)| value.as_deref())
                .unwrap_or("");
            tracing::debug!(client = %name.escape_debug(), "IMAP ID");
        }
        self.core.send(&Response::Id(Some(vec![(
            "name".to_string(),
            Some("sealpost".to_string()),
        )])));
        Completion::ok("ID completed")
    }
}
