//! DMARC unit tests: the record parser, organizational domains and alignment, and the whole
//! evaluation against a [`MemoryZone`](crate::lookup::MemoryZone).

use super::{DmarcRecord, ReportUri};

mod evaluate;
mod organizational;
mod record;

fn parse(text: &str) -> DmarcRecord {
    DmarcRecord::parse(text).unwrap_or_else(|error| panic!("{text:?}: {error}"))
}

fn uri(uri: &str, max_size: Option<u64>) -> ReportUri {
    ReportUri {
        uri: uri.to_string(),
        max_size,
    }
}
