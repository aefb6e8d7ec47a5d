//! Who is asking: a personal token (`Authorization: Bearer sfp_…`, the CLI's) or a session
//! cookie (the browser's, with its CSRF token on every state change), checked on every request
//! against the store. Sign-in attempts are limited per client address here and per account in
//! the store (a lockout after repeated failures).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use sha2::{Digest, Sha256};
use studyflow_identity::oidc::Standing;
use studyflow_identity::{Accounts, Authenticated, Identity};
use studyflow_store::{CredentialKind, Store};

use crate::App;
use crate::problem::Problem;

/// The session cookie. `__Host-`: only set with `Secure`, from this host, for every path.
pub const COOKIE: &str = "__Host-studyflow";
/// The header a session's state changes carry its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in person making this request.
#[derive(Debug, Clone)]
pub struct Person {
    pub who: Identity,
    pub held: Authenticated,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request carries a personal token or a session that is good now (a signed-in
/// person, whatever they may do).
pub(crate) async fn signed_in(app: &App, headers: &HeaderMap) -> bool {
    let now = app.engine.now();
    match (bearer(headers), session_cookie(headers)) {
        (Some(t), _) => app
            .accounts
            .authenticate(CredentialKind::Token, t, now)
            .await
            .is_ok(),
        (None, Some(s)) => app
            .accounts
            .authenticate(CredentialKind::Session, s, now)
            .await
            .is_ok(),
        (None, None) => false,
    }
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The value of the session cookie, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// `Set-Cookie` for a new session, or (with `None`) one that clears it.
pub fn set_cookie(secret: Option<&str>, max_age_s: i64) -> String {
    match secret {
        Some(s) => {
            format!("{COOKIE}={s}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age_s}")
        }
        None => format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
    }
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<Arc<App>> for Person {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Person, Problem> {
        let now = app.engine.now();
        let held = if let Some(token) = bearer(&parts.headers) {
            app.accounts
                .authenticate(CredentialKind::Token, token, now)
                .await?
        } else if let Some(session) = session_cookie(&parts.headers) {
            let held = app
                .accounts
                .authenticate(CredentialKind::Session, session, now)
                .await?;
            vouched_for(app, &held, now).await?;
            if changes_state(&parts.method) {
                let presented = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !Accounts::csrf_matches(&held.credential, presented) {
                    return Err(Problem::new(
                        axum::http::StatusCode::FORBIDDEN,
                        "csrf",
                        "a change from a browser session carries the session's CSRF token in the X-CSRF-Token header",
                    ));
                }
            }
            held
        } else {
            return Err(Problem::unauthenticated(
                "sign in: a personal token (Authorization: Bearer …, `studyflow login`) or a session",
            ));
        };
        Ok(Person {
            who: held.identity.clone(),
            held,
        })
    }
}

/// A session opened on the identity provider's word lasts as long as the provider vouches for
/// its person ([`studyflow_identity::oidc::Oidc::reconfirm`], every 5 minutes); when it no
/// longer does, the session ends here and now (audited with the provider's reason). A local
/// person's session needs no one else's word.
pub(crate) async fn vouched_for(app: &App, held: &Authenticated, now: i64) -> Result<(), Problem> {
    let who = &held.identity;
    if who.issuer() == studyflow_identity::LOCAL_ISSUER {
        return Ok(());
    }
    let standing = match &app.oidc {
        Some(oidc) if oidc.issuer() == who.issuer() => {
            oidc.reconfirm(&held.credential.hash, who.subject(), now)
                .await?
        }
        _ => Standing::Ended(
            "this server no longer signs people in at that identity provider".into(),
        ),
    };
    match standing {
        Standing::Vouched => Ok(()),
        Standing::Ended(why) => {
            app.accounts.end_session(held, &why, now).await?;
            Err(Problem::unauthenticated(format!(
                "your session has ended: {why}; sign in again"
            )))
        }
    }
}

/// The address of the connection's other end, over TCP or TLS alike.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// The client's address: the peer's, or — when the peer is a reverse proxy the server was told
/// to trust (`--trusted-proxy`) — the last address in `X-Forwarded-For` that is not a trusted
/// proxy's. A header from anyone else is ignored.
pub struct Client(pub IpAddr);

impl FromRequestParts<Arc<App>> for Client {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Client, Problem> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<Peer>>()
            // An IPv4 client of a dual-stack listener arrives as `::ffff:a.b.c.d`: as itself,
            // not as one /64 shared by every IPv4 address.
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.0.ip().to_canonical());
        Ok(Client(client_address(
            peer,
            &parts.headers,
            &app.trusted_proxies,
        )))
    }
}

/// See [`Client`].
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_address_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().unwrap(),
        );
        // From the proxy: the last address it did not add itself.
        assert_eq!(
            client_address(proxy, &h, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // From anyone else the header is the client's own word: ignored.
        let other: IpAddr = "192.0.2.5".parse().unwrap();
        assert_eq!(client_address(other, &h, &[proxy]), other);
        // IPv6 clients are limited by their /64.
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(limit_key(a), limit_key(b));
    }

    /// Attempts are counted in the store: two servers of one installation (two limiters on
    /// one database) count together, each kind in its own bucket.
    #[tokio::test]
    async fn attempts_are_counted_together_by_the_servers_of_an_installation() {
        let dir = std::env::temp_dir().join(format!("sf-limiter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("db");
        let store = Store::open(url.to_str().unwrap()).await.unwrap();
        let l = Limiter::new(store, 2, 1_000_000);
        let other = Limiter::new(
            Store::open_existing(url.to_str().unwrap()).await.unwrap(),
            2,
            1_000_000,
        );
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let waits = |r: Result<(), Limited>| match r {
            Err(Limited::Wait(s)) => Some(s),
            Ok(()) => None,
            Err(Limited::Store(e)) => panic!("{e}"),
        };
        assert!(l.attempt(a, 0).await.is_ok() && other.attempt(b, 1).await.is_ok());
        assert_eq!(waits(l.attempt(a, 2).await), Some(1));
        assert_eq!(waits(other.attempt(a, 2).await), Some(1));
        // Another kind of attempt from the same address has a bucket of its own, with the same
        // limit: codes entered are counted by the person, from any address.
        assert!(l.count(Attempt::DeviceAsk(a), 3).await.is_ok());
        let person = || Attempt::DeviceCode("studyflow:local inese.kalnina".into());
        assert!(l.count(person(), 3).await.is_ok() && other.count(person(), 4).await.is_ok());
        assert!(waits(l.count(person(), 5).await).is_some());
        assert!(
            l.count(Attempt::DeviceCode("studyflow:local gatis".into()), 5)
                .await
                .is_ok()
        );
        // Command-line sign-ins asked for, by a site's /48.
        let c: IpAddr = "2001:db8:1:ffff::3".parse().unwrap();
        assert!(l.count(Attempt::DeviceAsk(c), 6).await.is_ok());
        assert!(waits(other.count(Attempt::DeviceAsk(b), 7).await).is_some());
        // Sign-ins at the identity provider from the same address have a bucket of their own;
        // the provider's back channel may send many times as many.
        assert!(
            l.count(Attempt::ProviderSignIn(a), 8).await.is_ok()
                && l.count(Attempt::ProviderSignIn(b), 8).await.is_ok()
        );
        assert!(waits(l.count(Attempt::ProviderSignIn(a), 9).await).is_some());
        let provider: IpAddr = "192.0.2.7".parse().unwrap();
        for at in 0..2 * BACK_CHANNEL_TIMES {
            assert!(
                l.count(Attempt::BackChannel(provider), 10 + at)
                    .await
                    .is_ok()
            );
        }
        assert!(waits(l.count(Attempt::BackChannel(provider), 500).await).is_some());
        // Once the window has passed, the address may try again.
        assert!(l.attempt(a, 1_000_001).await.is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// What the limiter counts anyone's asks by: an IPv4 address, or an IPv6 address's /48 (a
/// whole site commonly holds one).
fn site_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

/// What the limiter counts by: an IPv4 address, or an IPv6 address's /64 (one host commonly
/// holds a whole /64).
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
    }
}

/// What an attempt is counted as: each kind in its own bucket, so asking for a command line's
/// sign-in from an office's one address does not use up its people's sign-ins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attempt {
    /// A sign-in (a password and code, a proof again, the identity provider's answer), by the
    /// client's address.
    SignIn(IpAddr),
    /// A command line asking to sign in through the browser, by the client's address.
    DeviceAsk(IpAddr),
    /// A user code entered on the `/device` page, by the signed-in login: a person cannot try
    /// codes faster from many addresses (RFC 8628 §5.1).
    DeviceCode(String),
    /// A sign-in sent to the identity provider or back from it, by the client's address: its
    /// own bucket, so a morning of an office's sign-ins at the provider leaves its local
    /// sign-ins alone, and the other way round.
    ProviderSignIn(IpAddr),
    /// A back-channel logout, by the provider's address: many people sign out there, each a
    /// request from that one address, so [`BACK_CHANNEL_TIMES`] the limit.
    BackChannel(IpAddr),
}

/// How many times the limit a provider's back channel may send: every person's sign-out there
/// is a request from its address.
pub const BACK_CHANNEL_TIMES: i64 = 50;

/// Attempts per client address (or per login): at most `limit` of each kind in any `window_us`,
/// counted in the store, so the servers of an installation count together.
#[derive(Debug, Clone)]
pub struct Limiter {
    store: Store,
    limit: i64,
    window_us: i64,
}

/// Why an attempt was not counted.
#[derive(Debug)]
pub enum Limited {
    /// Over the limit: the seconds to wait.
    Wait(i64),
    /// The store could not count it (the attempt is refused, not let through uncounted).
    Store(studyflow_store::StoreError),
}

impl Limiter {
    pub fn new(store: Store, limit: usize, window_us: i64) -> Limiter {
        Limiter {
            store,
            limit: i64::try_from(limit).unwrap_or(i64::MAX),
            window_us,
        }
    }

    /// Counts a sign-in attempt from `ip` at `now`; [`Limited::Wait`] with the seconds to wait
    /// when over the limit.
    pub async fn attempt(&self, ip: IpAddr, now: i64) -> Result<(), Limited> {
        self.count(Attempt::SignIn(ip), now).await
    }

    /// Counts an attempt of its kind at `now`; [`Limited::Wait`] with the seconds to wait when
    /// over the limit.
    pub async fn count(&self, attempt: Attempt, now: i64) -> Result<(), Limited> {
        let limit = match attempt {
            Attempt::BackChannel(_) => self.limit.saturating_mul(BACK_CHANNEL_TIMES),
            _ => self.limit,
        };
        let over = self
            .store
            .count_attempt(&attempt.bucket(), now, self.window_us, limit)
            .await
            .map_err(Limited::Store)?;
        match over {
            None => Ok(()),
            Some(oldest) => Err(Limited::Wait(
                (oldest + self.window_us - now) / 1_000_000 + 1,
            )),
        }
    }
}

impl Attempt {
    /// The bucket it is counted in: the SHA-256 of its kind and what it is counted by (an
    /// address's network, or a login), so the store keeps no address readable.
    fn bucket(&self) -> Vec<u8> {
        let key = match self {
            Attempt::SignIn(ip) => format!("sign-in {}", limit_key(*ip)),
            // Anyone may ask, and each grant waits in the database: by a whole site's /48.
            Attempt::DeviceAsk(ip) => format!("device-ask {}", site_key(*ip)),
            Attempt::DeviceCode(login) => format!("device-code {login}"),
            Attempt::ProviderSignIn(ip) => format!("provider-sign-in {}", limit_key(*ip)),
            Attempt::BackChannel(ip) => format!("back-channel {ip}"),
        };
        Sha256::digest(key.as_bytes()).to_vec()
    }
}
