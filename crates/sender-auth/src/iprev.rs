//! iprev (RFC 8601 §3): does the client's address have a name that points back to it?
//! Recorded in Authentication-Results for the reader; no policy depends on it.

use std::net::IpAddr;

use crate::lookup::DnsLookup;

/// RFC 8601 §3: at most this many PTR names are checked forward (as SPF's ptr, RFC 7208
/// §5.5), so that a PTR RRset of hundreds of names costs at most this many lookups.
const MAX_NAMES: usize = 10;

/// RFC 8601 §2.7.3 results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IprevResult {
    Pass,
    Fail,
    TempError,
    PermError,
}

impl IprevResult {
    pub fn as_str(self) -> &'static str {
        match self {
            IprevResult::Pass => "pass",
            IprevResult::Fail => "fail",
            IprevResult::TempError => "temperror",
            IprevResult::PermError => "permerror",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IprevVerdict {
    pub result: IprevResult,
    pub address: IpAddr,
    /// The name that maps back to the address, when one does.
    pub name: Option<String>,
}

impl IprevVerdict {
    /// The lookups did not end in time.
    pub fn timed_out(address: IpAddr) -> Self {
        IprevVerdict {
            result: IprevResult::TempError,
            address: address.to_canonical(),
            name: None,
        }
    }
}

pub async fn verify(dns: &dyn DnsLookup, address: IpAddr) -> IprevVerdict {
    let address = address.to_canonical();
    let verdict = |result, name| IprevVerdict {
        result,
        address,
        name,
    };
    let names = match dns.ptr(address).await {
        Ok(names) => names,
        Err(_) => return verdict(IprevResult::TempError, None),
    };
    // RFC 8601 §2.7.3: "permerror: ... no PTR data are published".
    if names.is_empty() {
        return verdict(IprevResult::PermError, None);
    }
    let mut temporary = false;
    for name in names.iter().take(MAX_NAMES) {
        let found = match address {
            IpAddr::V4(v4) => dns.ipv4(name).await.map(|list| list.contains(&v4)),
            IpAddr::V6(v6) => dns.ipv6(name).await.map(|list| list.contains(&v6)),
        };
        match found {
            Ok(true) => return verdict(IprevResult::Pass, Some(name.clone())),
            Ok(false) => {}
            Err(_) => temporary = true,
        }
    }
    if temporary {
        verdict(IprevResult::TempError, None)
    } else {
        // RFC 8601 §2.7.3: "fail: ... the forward lookup ... did not match".
        verdict(IprevResult::Fail, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lookup::MemoryZone;
    use std::net::Ipv4Addr;

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));

    fn run(zone: &MemoryZone) -> IprevVerdict {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(verify(zone, CLIENT))
    }

    #[test]
    fn a_name_that_points_back_passes() {
        let zone = MemoryZone::new()
            .ptr(CLIENT, "mail.example.com")
            .a("mail.example.com", Ipv4Addr::new(192, 0, 2, 10));
        let verdict = run(&zone);
        assert_eq!(verdict.result, IprevResult::Pass);
        assert_eq!(verdict.name.as_deref(), Some("mail.example.com"));
    }

    #[test]
    fn a_name_pointing_elsewhere_fails_and_no_ptr_is_permerror() {
        let zone = MemoryZone::new()
            .ptr(CLIENT, "mail.example.com")
            .a("mail.example.com", Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!(run(&zone).result, IprevResult::Fail);
        assert_eq!(run(&MemoryZone::new()).result, IprevResult::PermError);
    }

    #[test]
    fn dns_trouble_is_temperror_and_names_are_bounded() {
        let zone = MemoryZone::new().failing(&CLIENT.to_string());
        assert_eq!(run(&zone).result, IprevResult::TempError);
        let mut zone = MemoryZone::new();
        for n in 0..30 {
            zone = zone.ptr(CLIENT, &format!("n{n}.example.com"));
        }
        assert_eq!(run(&zone).result, IprevResult::Fail);
        assert_eq!(zone.asked_count(), 1 + MAX_NAMES);
    }
}
