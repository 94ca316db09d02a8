//! The client core talking to the server core, in memory: each side's output is the other's
//! input, the server's events are answered as a permissive service would, and the caller's
//! policy is "STARTTLS when offered, then send every message, then QUIT".

use crate::client::{
    ClientConfig, ClientCore, DsnNotify, DsnRet, Envelope, Event, MessageBody, RecipientOutcome,
    Reply, SessionEnd, TransactionResult,
};
use crate::core::{
    Answer, BodyType, CoreConfig, DsnNotify as ServerNotify, Event as ServerEvent, MailParams,
    RcptParams, ServerCore,
};

/// A port-25 server with STARTTLS and DSN.
pub(super) fn mx() -> CoreConfig {
    CoreConfig {
        hostname: "mx.example".to_string(),
        max_message_size: 1 << 20,
        max_recipients: 10,
        max_errors: 20,
        offer_starttls: true,
        tls_active: false,
        auth_mechanisms: Vec::new(),
        auth_requires_tls: true,
        require_auth_for_mail: false,
        offer_dsn: true,
    }
}

/// Accepts every sender and message, and every recipient but `unknown...`.
fn service(event: &ServerEvent) -> Option<Answer> {
    Some(match event {
        ServerEvent::Mail { .. } => Answer::Accept(Reply::new(250, "2.1.0", "Sender OK")),
        ServerEvent::Rcpt { to, .. } if to.starts_with("unknown") => {
            Answer::Reject(Reply::new(550, "5.1.1", "No such user"))
        }
        ServerEvent::Rcpt { .. } => Answer::Accept(Reply::new(250, "2.1.5", "Recipient OK")),
        ServerEvent::Message { .. } => Answer::Accept(Reply::new(250, "2.0.0", "Queued")),
        ServerEvent::StartTls | ServerEvent::Auth { .. } | ServerEvent::AuthResponse { .. } => {
            return None;
        }
    })
}

/// What both sides saw.
#[derive(Debug)]
pub(super) struct Delivery {
    pub(super) server_events: Vec<ServerEvent>,
    pub(super) client_events: Vec<Event>,
}

impl Delivery {
    /// The message bodies the server received.
    pub(super) fn bodies(&self) -> Vec<Vec<u8>> {
        self.server_events
            .iter()
            .filter_map(|event| match event {
                ServerEvent::Message { body } => Some(body.clone()),
                _ => None,
            })
            .collect()
    }

    fn results(&self) -> Vec<TransactionResult> {
        self.client_events
            .iter()
            .filter_map(|event| match event {
                Event::Transaction(result) => Some(result.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Runs one session delivering `messages` in order.
pub(super) fn deliver(
    server_config: CoreConfig,
    messages: &[(Envelope, MessageBody)],
    starttls: bool,
) -> Delivery {
    let mut server = ServerCore::new(server_config);
    let mut client = ClientCore::new(ClientConfig {
        hostname: "client.example".to_string(),
        tls_active: false,
    })
    .unwrap();
    let mut delivery = Delivery {
        server_events: Vec::new(),
        client_events: Vec::new(),
    };
    let mut next = messages.iter();
    let mut eof_sent = false;
    for _ in 0..100_000 {
        let mut progressed = false;
        // Client → server, in the core's bounded pieces.
        loop {
            let out = client.take_output();
            if out.is_empty() {
                break;
            }
            progressed = true;
            server.feed(&out);
            while let Some(event) = server.next_event() {
                if let Some(answer) = service(&event) {
                    assert!(server.answer(answer));
                }
                delivery.server_events.push(event);
            }
        }
        // Server → client.
        let out = server.take_output();
        if !out.is_empty() {
            progressed = true;
            client.feed(&out);
        }
        if server.should_close() && !eof_sent {
            eof_sent = true;
            progressed = true;
            client.feed_eof();
        }
        while let Some(event) = client.next_event() {
            progressed = true;
            match &event {
                Event::Ready {
                    extensions,
                    tls_active,
                } if starttls && !tls_active && extensions.starttls => {
                    client.start_tls().unwrap();
                }
                Event::UpgradeTls => {
                    // The in-memory "handshake": both sides switch at once.
                    assert_eq!(delivery.server_events.last(), Some(&ServerEvent::StartTls));
                    server.tls_started();
                    client.tls_started();
                }
                Event::Ready { .. } | Event::StartTlsRefused(_) | Event::Transaction(_)
                    if client.is_idle() =>
                {
                    match next.next() {
                        Some((envelope, body)) => client.send(envelope, body.clone()).unwrap(),
                        None => client.quit().unwrap(),
                    }
                }
                _ => {}
            }
            delivery.client_events.push(event);
        }
        if !progressed {
            assert!(client.should_close(), "stalled: {client:?} {server:?}");
            return delivery;
        }
    }
    panic!("the session did not end");
}

fn server_mail(from: Option<&str>, params: MailParams) -> ServerEvent {
    ServerEvent::Mail {
        from: from.map(str::to_string),
        params,
    }
}

fn server_rcpt(to: &str, params: RcptParams) -> ServerEvent {
    ServerEvent::Rcpt {
        to: to.to_string(),
        params,
    }
}

#[test]
fn client_core_delivers_to_server_core() {
    // Dot lines, a UTF-8 header and body, a blank line at the end.
    let first_body = "From: a@origin.example\r\nSubject: Grüße\r\n\r\n.leading dot\r\n..two\r\n\
                      .\r\nünïcødé\r\n\r\n";
    let mut first = Envelope::new(
        Some("sender@origin.example"),
        ["alice@mx.example", "unknown@mx.example", "bob@mx.example"],
    );
    first.smtputf8 = true;
    first.ret = Some(DsnRet::Full);
    first.envid = Some("id+1 x=y".to_string());
    first.recipients[0].notify = Some(DsnNotify {
        failure: true,
        delay: true,
        ..DsnNotify::default()
    });
    first.recipients[0].orcpt = Some(("rfc822".to_string(), "Alice+tag@mx.example".to_string()));
    // A bounce: null sender, a body with bare LFs and no final line ending.
    let second = Envelope::new(None, ["carol@mx.example"]);
    let second_body = "Subject: bounce\n\n.\nlast line";

    let delivery = deliver(
        mx(),
        &[
            (first, MessageBody::from(first_body)),
            (second, MessageBody::from(second_body)),
        ],
        true,
    );

    assert_eq!(
        delivery.server_events,
        [
            ServerEvent::StartTls,
            server_mail(
                Some("sender@origin.example"),
                MailParams {
                    size: Some(first_body.len() as u64),
                    body: Some(BodyType::EightBitMime),
                    smtputf8: true,
                    ret: Some(crate::core::DsnRet::Full),
                    envid: Some("id+1 x=y".to_string()),
                    auth: None,
                    require_tls: false,
                }
            ),
            server_rcpt(
                "alice@mx.example",
                RcptParams {
                    notify: Some(ServerNotify {
                        failure: true,
                        delay: true,
                        ..ServerNotify::default()
                    }),
                    orcpt: Some(("rfc822".to_string(), "Alice+tag@mx.example".to_string())),
                }
            ),
            server_rcpt("unknown@mx.example", RcptParams::default()),
            server_rcpt("bob@mx.example", RcptParams::default()),
            ServerEvent::Message {
                body: first_body.as_bytes().to_vec()
            },
            server_mail(
                None,
                MailParams {
                    size: Some(33),
                    ..MailParams::default()
                }
            ),
            server_rcpt("carol@mx.example", RcptParams::default()),
            ServerEvent::Message {
                body: b"Subject: bounce\r\n\r\n.\r\nlast line\r\n".to_vec()
            },
        ]
    );

    let results = delivery.results();
    let queued = RecipientOutcome::Accepted(Reply::new(250, "2.0.0", "Queued"));
    assert_eq!(
        results
            .iter()
            .map(TransactionResult::outcomes)
            .collect::<Vec<_>>(),
        [
            vec![
                queued.clone(),
                RecipientOutcome::PermanentFailure(Reply::new(550, "5.1.1", "No such user")),
                queued.clone(),
            ],
            vec![queued],
        ]
    );
    // Over TLS, and the session ended with QUIT.
    assert!(matches!(
        delivery.client_events.get(2),
        Some(Event::Ready { tls_active: true, extensions }) if extensions.dsn && extensions.pipelining
    ));
    assert!(matches!(
        delivery.client_events.last(),
        Some(Event::Closed(SessionEnd::Quit(Some(reply)))) if reply.code == 221
    ));
}

/// No STARTTLS, DSN not offered: the DSN parameters are left out and the server core (which
/// would refuse them with 555) accepts the transaction.
#[test]
fn dsn_parameters_are_left_out_when_not_offered() {
    let mut envelope = Envelope::new(Some("s@origin.example"), ["alice@mx.example"]);
    envelope.ret = Some(DsnRet::Headers);
    envelope.recipients[0].notify = Some(DsnNotify {
        never: true,
        ..DsnNotify::default()
    });
    let config = CoreConfig {
        offer_dsn: false,
        ..mx()
    };
    let delivery = deliver(config, &[(envelope, MessageBody::from("x\r\n"))], false);
    assert_eq!(delivery.bodies(), [b"x\r\n".to_vec()]);
    assert_eq!(
        delivery.server_events.first(),
        Some(&server_mail(
            Some("s@origin.example"),
            MailParams {
                size: Some(3),
                ..MailParams::default()
            }
        ))
    );
}

/// A large message crosses in bounded pieces and arrives intact.
#[test]
fn large_message_end_to_end() {
    let line = ".dotted line of some length, to be stuffed and unstuffed again\r\n";
    let body = line.repeat(8_000); // ~530 KB
    let envelope = Envelope::new(Some("s@origin.example"), ["alice@mx.example"]);
    let delivery = deliver(mx(), &[(envelope, MessageBody::from(body.clone()))], true);
    assert_eq!(delivery.bodies(), [body.into_bytes()]);
}
