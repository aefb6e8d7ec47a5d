//! The commands a person runs — submit, amend, approve, contract, start, terminate, tasks,
//! task complete and note — go to the server (`studyflow serve`) with the personal token that
//! `studyflow login` keeps, so every act is a signed-in identity's: the CLI proves nothing by
//! itself and decides nothing (the engine does, behind the API).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use studyflow_server::api::{
    CredentialsChanged, DeviceGranting, Done, NoteView, Page, ReleaseFiles, SecondFactorBegun,
    Supplied, TaskFiles, TaskView, TokenIssued, TokenView,
};
use studyflow_server::problem::Problem;

use super::Context;
use crate::cli::{
    Command, LoginArgs, PasswordArgs, SecondFactorArgs, ServerArgs, TaskArgs, TaskCommand,
    TokensArgs,
};
use crate::{EXIT_FINDINGS, EXIT_OK};

/// The token file when none is named.
fn default_token_file() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .context("no HOME: give --token-file (STUDYFLOW_TOKEN_FILE)")?,
        )
        .join(".config"),
    };
    Ok(base.join("studyflow").join("token"))
}

fn token_file(args: &ServerArgs) -> anyhow::Result<PathBuf> {
    match &args.token_file {
        Some(p) => Ok(p.clone()),
        None => default_token_file(),
    }
}

/// What `login` keeps: the server it is for, and the token.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    server: String,
    token: String,
}

fn server_base(args: &ServerArgs) -> String {
    args.server.trim_end_matches('/').to_owned()
}

/// A server a password, a code or a token may be sent to: `https://`, or plain `http://` on
/// this machine only (loopback), where nothing crosses a network.
fn check_transport(base: &str) -> anyhow::Result<()> {
    let url = reqwest::Url::parse(base).map_err(|_| {
        anyhow::anyhow!("`{base}` is not a server address: https://… (or http:// on this machine)")
    })?;
    anyhow::ensure!(
        url.username().is_empty() && url.password().is_none(),
        "`{base}` carries a user name: give the server's address alone"
    );
    match url.scheme() {
        _ if studyflow_identity::oidc::secrets_may_go_to(&url) => Ok(()),
        "http" => anyhow::bail!(
            "refused to send a password, code or token to {base} in clear: use https:// (a server on another machine is behind TLS, docs/serve.md)"
        ),
        _ => anyhow::bail!(
            "`{base}` is not a server address: https://… (or http:// on this machine)"
        ),
    }
}

fn read_kept(args: &ServerArgs) -> anyhow::Result<String> {
    let path = token_file(args)?;
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "not signed in: no token at {} (run `studyflow login --server {} --login <you>`)",
            path.display(),
            args.server
        )
    })?;
    check_private(&path)?;
    let kept: Kept = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a token file of `studyflow login`", path.display()))?;
    if kept.server != server_base(args) {
        anyhow::bail!(
            "the token at {} is for {}, not {}: run `studyflow login --server {}`",
            path.display(),
            kept.server,
            args.server,
            args.server
        );
    }
    Ok(kept.token)
}

/// A token others can read is refused, as the worker refuses such a master key.
fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} can be read by others (mode {:o}): `chmod 600` it, or sign in again",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

/// A folder (and its parents) created owner-only.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes `bytes` to `path` owner-only, whole or not at all: a new temporary file (never one
/// that is there already, which another account may have made) renamed over it.
/// A name the server gives a file is written below `--out` only when it is one plain part of
/// a path there: no folder, no `..`, no drive or root (`C:x` on Windows), nothing hidden.
fn plain_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(std::path::Component::Normal(_)))
        && parts.next().is_none()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', ':', '\0'])
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce)
        .map_err(|e| anyhow::anyhow!("the operating system's random source: {e}"))?;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.partial", hex::encode(nonce)));
    let tmp = path.with_file_name(name);
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_kept(path: &Path, kept: &Kept) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    write_private(path, serde_json::to_string(kept)?.as_bytes())
}

/// A password: from the file (`-`: the first line of standard input), else asked for without
/// echo.
pub(crate) fn password(file: Option<&Path>, prompt: &str) -> anyhow::Result<String> {
    match file {
        Some(f) if f.as_os_str() == "-" => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            Ok(line.trim_end_matches(['\r', '\n']).to_owned())
        }
        Some(f) => Ok(std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned()),
        None => rpassword::prompt_password(prompt).context("cannot read the password"),
    }
}

/// `given`, or what is typed at `prompt` when nothing was given.
fn given_or_asked(given: Option<&str>, prompt: &str) -> anyhow::Result<String> {
    match given {
        Some(g) => Ok(g.to_owned()),
        None => ask(prompt),
    }
}

fn ask(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// A request's answer: its JSON, or the problem.
enum Reply {
    /// Done: the answer's body, and whether the server could seal its audit for it.
    Ok(Value, Sealing),
    Problem(Problem),
}

/// Whether the server sealed the audit of what it did (`Studyflow-Audit: unsealed` when not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sealing {
    Sealed,
    Unsealed,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

enum Body<'a> {
    None,
    Json(Value),
    Yaml(&'a [u8]),
    Csv(&'a [u8]),
    /// A file of JSON sent as it is (an institution's answer).
    JsonFile(&'a [u8]),
}

impl Client {
    fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        check_transport(&server_base(args))?;
        Ok(Client {
            http: http()?,
            base: server_base(args),
            token: read_kept(args)?,
        })
    }

    async fn send(&self, method: Method, path: &str, body: &Body<'_>) -> anyhow::Result<Reply> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(v),
            Body::Yaml(b) => req
                .header("content-type", "application/yaml")
                .body(b.to_vec()),
            Body::Csv(b) => req.header("content-type", "text/csv").body(b.to_vec()),
            Body::JsonFile(b) => req
                .header("content-type", "application/json")
                .body(b.to_vec()),
        };
        reply(req.send().await, &self.base).await
    }

    /// GETs a file; a recent proof of identity asked for as by [`Client::act`].
    async fn file(&self, path: &str) -> anyhow::Result<Result<Vec<u8>, Problem>> {
        for attempt in 0..2 {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .send()
                .await;
            let r = r.map_err(|e| {
                anyhow::anyhow!("cannot reach the studyflow server at {}: {e}", self.base)
            })?;
            if r.status().is_success() {
                return Ok(Ok(r.bytes().await?.to_vec()));
            }
            let text = r.text().await.unwrap_or_default();
            let p: Problem = serde_json::from_str(&text).with_context(|| {
                format!("the server at {} answered what is not a problem", self.base)
            })?;
            if attempt == 1 || !self.reauthenticate(&p).await? {
                return Ok(Err(p));
            }
        }
        unreachable!("two attempts at most")
    }

    /// At a terminal, when `p` asks for a recent proof: asks for the password and a code and
    /// proves it; whether it did.
    async fn reauthenticate(&self, p: &Problem) -> anyhow::Result<bool> {
        if p.short() != "reauthenticate" || !std::io::stdin().is_terminal() {
            return Ok(false);
        }
        eprintln!("{}", p.detail);
        // A person of the identity provider has no password here: a new sign-in in the
        // browser is their proof.
        if let Reply::Ok(me, _) = self
            .send(Method::GET, "/api/v1/session", &Body::None)
            .await?
            && me["issuer"].as_str() != Some(studyflow_identity::LOCAL_ISSUER)
        {
            eprintln!(
                "you sign in at the identity provider: run `studyflow login --device` again, then repeat this"
            );
            return Ok(false);
        }
        let pw = password(None, "password: ")?;
        let code = ask("code: ")?;
        Ok(matches!(
            self.send(
                Method::POST,
                "/api/v1/session/reauthenticate",
                &Body::Json(json!({"password": pw, "code": code})),
            )
            .await?,
            Reply::Ok(_, _)
        ))
    }

    /// Sends; when the act needs a recent proof of identity, asks for the password and a code
    /// (at a terminal), proves it, and sends again.
    async fn act(&self, method: Method, path: &str, body: Body<'_>) -> anyhow::Result<Reply> {
        let r = self.send(method.clone(), path, &body).await?;
        let Reply::Problem(p) = &r else { return Ok(r) };
        if self.reauthenticate(p).await? {
            self.send(method, path, &body).await
        } else {
            Ok(r)
        }
    }
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        // A redirect would carry the body (a password and a code) elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(120))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()?)
}

async fn reply(sent: reqwest::Result<reqwest::Response>, base: &str) -> anyhow::Result<Reply> {
    let r = sent.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the studyflow server at {base}: {} (is `studyflow serve` running there? --server, STUDYFLOW_SERVER)",
            if e.is_connect() { "connection refused or no route".to_owned() } else { e.to_string() }
        )
    })?;
    let status = r.status();
    let unsealed = r
        .headers()
        .get(studyflow_server::AUDIT_HEADER)
        .is_some_and(|v| v == "unsealed");
    let text = r.text().await.unwrap_or_default();
    if status.is_success() {
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .with_context(|| format!("the server at {base} answered what is not JSON"))?
        };
        let sealing = if unsealed {
            Sealing::Unsealed
        } else {
            Sealing::Sealed
        };
        return Ok(Reply::Ok(v, sealing));
    }
    match serde_json::from_str::<Problem>(&text) {
        Ok(p) if status != StatusCode::INTERNAL_SERVER_ERROR => Ok(Reply::Problem(p)),
        Ok(p) => anyhow::bail!("the server failed: {}", p.detail),
        Err(_) => anyhow::bail!("the server at {base} answered {status}"),
    }
}

/// A problem said: the spec's findings at their lines, then the refusal; exit 1.
fn refused(ctx: &mut Context<'_>, p: &Problem, file: Option<&Path>) -> anyhow::Result<u8> {
    for d in &p.diagnostics {
        let line = d["span"]["line"].as_u64().unwrap_or(1);
        let column = d["span"]["column"].as_u64().unwrap_or(1);
        let points: Vec<&str> = d["regulation"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        writeln!(
            ctx.err,
            "{}:{line}:{column}: {}[{}]: {}{}",
            file.map_or("spec".into(), |f| f.display().to_string()),
            d["severity"].as_str().unwrap_or("error"),
            d["code"].as_str().unwrap_or(""),
            d["message"].as_str().unwrap_or(""),
            if points.is_empty() {
                String::new()
            } else {
                format!(" (MK403 {})", points.join(", "))
            }
        )?;
    }
    for r in &p.rows {
        writeln!(
            ctx.err,
            "{}:{}: {}",
            file.map_or("file".into(), |f| f.display().to_string()),
            r["row"].as_u64().unwrap_or(0),
            r["problem"].as_str().unwrap_or("")
        )?;
    }
    let detail = if p.short() == "invalid-spec" {
        "the spec does not validate; nothing was stored".to_owned()
    } else {
        p.detail.clone()
    };
    writeln!(ctx.err, "studyflow: refused: {detail}")?;
    if p.short() == "unauthenticated" {
        writeln!(
            ctx.err,
            "studyflow: sign in again: studyflow login --login <you>"
        )?;
    }
    Ok(EXIT_FINDINGS)
}

fn done(ctx: &mut Context<'_>, r: Reply, file: Option<&Path>) -> anyhow::Result<u8> {
    match r {
        Reply::Ok(v, sealing) => {
            let d: Done = serde_json::from_value(v).unwrap_or_default();
            writeln!(ctx.out, "{}", d.message)?;
            unsealed(ctx, sealing)
        }
        Reply::Problem(p) => refused(ctx, &p, file),
    }
}

/// An act done: warned of when the server could not seal its audit for it.
fn unsealed(ctx: &mut Context<'_>, sealing: Sealing) -> anyhow::Result<u8> {
    if sealing == Sealing::Unsealed {
        writeln!(
            ctx.err,
            "warning: done, but the server cannot seal its audit at the moment: the act is recorded and waits to be sealed; tell the operator (`studyflow status` says why)"
        )?;
    }
    Ok(EXIT_OK)
}

fn read_spec(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The age public key in `text`: the key itself, or a file of them — the `# public key:` line
/// of the identity file `age-keygen` writes included. A secret key is never taken (and so
/// never sent): without its public key beside it, the person is told how to get that.
fn age_public_key(text: &str) -> anyhow::Result<String> {
    let mut secret = false;
    for line in text.lines().map(str::trim) {
        if let Some(k) = line.strip_prefix("# public key:") {
            return Ok(k.trim().to_owned());
        }
        if line.starts_with("AGE-SECRET-KEY-") {
            secret = true;
        } else if line.starts_with("age1") {
            return Ok(line.to_owned());
        }
    }
    anyhow::ensure!(
        !secret,
        "that is a secret key: give your public key (age1…, as `age-keygen -y KEYFILE` prints it); nothing was sent"
    );
    anyhow::bail!("no age public key (age1…) in what was given; nothing was sent")
}

/// Path segments are ids (`[a-z0-9-]`) or numbers; anything else is refused before it is sent.
fn segment(id: &str) -> anyhow::Result<&str> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Ok(id)
    } else {
        anyhow::bail!("`{id}` is not a study id")
    }
}

pub async fn login(a: &LoginArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let base = server_base(&a.server);
    check_transport(&base)?;
    if a.device {
        return device_login(a, &base, ctx).await;
    }
    let login = a.login.as_deref().unwrap_or_default();
    let pw = password(a.password_file.as_deref(), "password: ")?;
    let code = given_or_asked(a.code.as_deref(), "code from your authenticator app: ")?;
    let sent = http()?
        .post(format!("{base}/api/v1/tokens"))
        .json(&json!({"login": login, "password": pw, "code": code, "label": a.label, "days": a.days}))
        .send()
        .await;
    match reply(sent, &base).await? {
        Reply::Ok(v, _) => keep_token(a, &base, serde_json::from_value(v)?, ctx).await,
        Reply::Problem(p) => refused(ctx, &p, None),
    }
}

/// Keeps the token `t` for `studyflow login`'s server, revoking the one kept before, and says
/// who is signed in.
async fn keep_token(
    a: &LoginArgs,
    base: &str,
    t: TokenIssued,
    ctx: &mut Context<'_>,
) -> anyhow::Result<u8> {
    let path = token_file(&a.server)?;
    // The token kept before is revoked, not left valid on the server.
    if let Ok(old) = Client::new(&a.server) {
        let _ = old
            .send(Method::DELETE, "/api/v1/session", &Body::None)
            .await;
    }
    write_kept(
        &path,
        &Kept {
            server: base.to_owned(),
            token: t.token,
        },
    )?;
    let me = Client::new(&a.server)?
        .send(Method::GET, "/api/v1/session", &Body::None)
        .await?;
    let who = match &me {
        Reply::Ok(v, _) => v["login"].as_str().unwrap_or("(unknown)").to_owned(),
        Reply::Problem(p) => anyhow::bail!("the token just issued is refused: {}", p.detail),
    };
    writeln!(
        ctx.out,
        "signed in to {base} as {who}; the token is kept in {} until {}",
        path.display(),
        t.expires_at
    )?;
    Ok(EXIT_OK)
}

/// `studyflow login --device`: a code to enter in the browser, then a poll every few seconds
/// until the person approves or denies it there, or it expires (RFC 8628 §3.4–3.5).
async fn device_login(a: &LoginArgs, base: &str, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let http = http()?;
    let sent = http
        .post(format!("{base}/api/v1/device"))
        .json(&json!({"label": a.label, "days": a.days}))
        .send()
        .await;
    let asked: DeviceGranting = match reply(sent, base).await? {
        Reply::Ok(v, _) => serde_json::from_value(v)?,
        Reply::Problem(p) => return refused(ctx, &p, None),
    };
    writeln!(
        ctx.err,
        "To sign in, open {base}{} in a browser where you are signed in to studyflow and type the code\n\n    {}\n\nIt expires in {} minutes; waiting…",
        asked.verification_path,
        asked.user_code,
        (asked.expires_in + 59) / 60
    )?;
    let mut interval = asked.interval.max(1);
    // The server says when the grant has expired (`expired_token`).
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(
            u64::try_from(interval).unwrap_or(5),
        ))
        .await;
        let sent = http
            .post(format!("{base}/api/v1/device/token"))
            .json(&json!({"device_code": asked.device_code}))
            .send()
            .await;
        match reply(sent, base).await? {
            Reply::Ok(v, _) => return keep_token(a, base, serde_json::from_value(v)?, ctx).await,
            Reply::Problem(p) => match p.short() {
                "authorization_pending" => {}
                // RFC 8628 §3.5: five seconds more from now on.
                "slow_down" => interval += 5,
                "access_denied" => {
                    writeln!(ctx.err, "the sign-in was denied in the browser")?;
                    return Ok(crate::EXIT_FINDINGS);
                }
                _ => return refused(ctx, &p, None),
            },
        }
    }
}

pub async fn logout(a: &ServerArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let path = token_file(a)?;
    if !path.exists() {
        writeln!(ctx.out, "not signed in")?;
        return Ok(EXIT_OK);
    }
    let c = Client::new(a)?;
    let r = c
        .send(Method::DELETE, "/api/v1/session", &Body::None)
        .await?;
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    match r {
        Reply::Ok(_, _) => writeln!(ctx.out, "signed out: the token is revoked and forgotten")?,
        Reply::Problem(p) => writeln!(ctx.out, "the token is forgotten ({})", p.detail)?,
    }
    Ok(EXIT_OK)
}

/// `studyflow password`: the person's own new password, proven with the one they have and a
/// code.
pub async fn change_password(a: &PasswordArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let c = Client::new(&a.server)?;
    let current = password(a.password_file.as_deref(), "the password you have: ")?;
    let code = given_or_asked(a.code.as_deref(), "code from your authenticator app: ")?;
    let new = match &a.new_password_file {
        Some(f) => password(Some(f), "")?,
        None => {
            let new = password(None, "new password (at least 12 characters): ")?;
            anyhow::ensure!(
                password(None, "the new password again: ")? == new,
                "the two new passwords differ; nothing was changed"
            );
            new
        }
    };
    let body = Body::Json(
        json!({"password": current, "code": code, "new_password": new, "revoke_tokens": a.revoke_tokens}),
    );
    match c
        .send(Method::POST, "/api/v1/account/password", &body)
        .await?
    {
        Reply::Ok(v, sealing) => {
            let changed: CredentialsChanged = serde_json::from_value(v)?;
            writeln!(ctx.out, "password changed; {}", ended(&changed))?;
            unsealed(ctx, sealing)
        }
        Reply::Problem(p) => refused(ctx, &p, None),
    }
}

/// `studyflow second-factor`: a new second factor begun (its key shown) and, at a terminal,
/// proven with a code of it at once; `--confirm CODE` ends one begun before.
pub async fn second_factor(a: &SecondFactorArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let c = Client::new(&a.server)?;
    let confirm = match &a.confirm {
        Some(code) => code.clone(),
        None => {
            let current = password(a.password_file.as_deref(), "your password: ")?;
            let code = given_or_asked(
                a.code.as_deref(),
                "code from the authenticator app you have: ",
            )?;
            let body = Body::Json(json!({"password": current, "code": code}));
            let begun: SecondFactorBegun = match c
                .send(Method::POST, "/api/v1/account/second-factor", &body)
                .await?
            {
                Reply::Ok(v, _) => serde_json::from_value(v)?,
                Reply::Problem(p) => return refused(ctx, &p, None),
            };
            writeln!(
                ctx.out,
                "your new second factor — add it to your authenticator app (shown once):\n  key:  {}\n  link: {}",
                begun.secret, begun.otpauth
            )?;
            if !std::io::stdin().is_terminal() {
                writeln!(
                    ctx.out,
                    "until you confirm it, the one you have signs in: studyflow second-factor --confirm <the code the app shows for the new key>"
                )?;
                return Ok(EXIT_OK);
            }
            ask("the code the app shows now for the new key: ")?
        }
    };
    let body = Body::Json(json!({"code": confirm, "revoke_tokens": a.revoke_tokens}));
    match c
        .send(Method::POST, "/api/v1/account/second-factor/confirm", &body)
        .await?
    {
        Reply::Ok(v, sealing) => {
            let changed: CredentialsChanged = serde_json::from_value(v)?;
            writeln!(ctx.out, "second factor replaced; {}", ended(&changed))?;
            unsealed(ctx, sealing)
        }
        Reply::Problem(p) => {
            let code = refused(ctx, &p, None)?;
            if p.detail == studyflow_identity::NOT_THE_NEW_CODE {
                writeln!(
                    ctx.err,
                    "studyflow: try the app's next code: studyflow second-factor --confirm <code>"
                )?;
            }
            Ok(code)
        }
    }
}

/// What a change of a person's own credentials ended, in words.
fn ended(c: &CredentialsChanged) -> String {
    let tokens = if c.tokens_revoked > 0 {
        format!("{} other personal token(s) revoked", c.tokens_revoked)
    } else {
        "your personal tokens stay".to_owned()
    };
    format!("{} browser session(s) ended, {tokens}", c.sessions_ended)
}

/// `studyflow tokens`: the person's personal tokens, newest first, or one revoked.
pub async fn tokens(a: &TokensArgs, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    let c = Client::new(&a.server)?;
    let listed: Vec<TokenView> = match c.send(Method::GET, "/api/v1/tokens", &Body::None).await? {
        Reply::Ok(v, _) => serde_json::from_value(v)?,
        Reply::Problem(p) => return refused(ctx, &p, None),
    };
    let Some(prefix) = &a.revoke else {
        if listed.is_empty() {
            writeln!(ctx.out, "no personal tokens")?;
        }
        for t in &listed {
            let state = if t.revoked {
                "revoked".to_owned()
            } else {
                format!("valid until {}", t.expires_at)
            };
            writeln!(
                ctx.out,
                "{}  {:<32} issued {}  last used {}  {state}",
                &t.id[..t.id.len().min(12)],
                t.label,
                t.created_at,
                t.last_used_at
            )?;
        }
        return Ok(EXIT_OK);
    };
    let prefix = prefix.trim().to_ascii_lowercase();
    anyhow::ensure!(
        prefix.len() >= 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
        "`{prefix}` is not a token id: give at least 8 of its characters as `studyflow tokens` lists them"
    );
    // Only a token that still acts: a revoked one is no ambiguity, and no revocation.
    let matching: Vec<&TokenView> = listed
        .iter()
        .filter(|t| !t.revoked && t.id.starts_with(&prefix))
        .collect();
    let [t] = matching.as_slice() else {
        anyhow::bail!(
            "{} of your valid tokens begin with `{prefix}`: give the id as `studyflow tokens` lists it",
            matching.len()
        );
    };
    match c
        .send(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", t.id),
            &Body::None,
        )
        .await?
    {
        Reply::Ok(_, _) => {
            writeln!(ctx.out, "revoked the token `{}`", t.label)?;
            Ok(EXIT_OK)
        }
        Reply::Problem(p) => refused(ctx, &p, None),
    }
}

pub async fn run(command: Command, ctx: &mut Context<'_>) -> anyhow::Result<u8> {
    match command {
        Command::Submit(a) => {
            let bytes = read_spec(&a.spec)?;
            let r = Client::new(&a.server)?
                .act(Method::POST, "/api/v1/studies", Body::Yaml(&bytes))
                .await?;
            done(ctx, r, Some(&a.spec))
        }
        Command::Amend(a) => {
            let bytes = read_spec(&a.spec)?;
            let path = format!("/api/v1/studies/{}/versions", segment(&a.study)?);
            let r = Client::new(&a.server)?
                .act(Method::POST, &path, Body::Yaml(&bytes))
                .await?;
            done(ctx, r, Some(&a.spec))
        }
        Command::Approve(a) => {
            let path = format!("/api/v1/studies/{}/approve", segment(&a.study)?);
            let r = Client::new(&a.server)?
                .act(
                    Method::POST,
                    &path,
                    Body::Json(json!({"plan_hash": a.plan_hash})),
                )
                .await?;
            done(ctx, r, None)
        }
        Command::Refuse(a) => {
            let path = format!("/api/v1/studies/{}/refuse", segment(&a.study)?);
            let r = Client::new(&a.server)?
                .act(
                    Method::POST,
                    &path,
                    Body::Json(json!({"plan_hash": a.plan_hash, "reason": a.reason})),
                )
                .await?;
            done(ctx, r, None)
        }
        Command::Contract(a) => {
            let path = format!("/api/v1/studies/{}/contract", segment(&a.study)?);
            let body = json!({
                "number": a.number,
                "concluded_on": a.concluded_on.to_string(),
                "signatories": a.signatories,
                "measures_checked": a.measures_checked,
            });
            let r = Client::new(&a.server)?
                .act(Method::POST, &path, Body::Json(body))
                .await?;
            done(ctx, r, None)
        }
        Command::Start(a) => {
            let path = format!("/api/v1/studies/{}/start", segment(&a.study)?);
            let r = Client::new(&a.server)?
                .act(Method::POST, &path, Body::None)
                .await?;
            done(ctx, r, None)
        }
        Command::ContactKey(a) => {
            let path = format!("/api/v1/studies/{}/contact-key", segment(&a.study)?);
            // A key, or a file holding one — never the secret key beside it.
            let key = if a.key.trim_start().starts_with("age1")
                || a.key.trim_start().starts_with("AGE-SECRET-KEY-")
            {
                age_public_key(&a.key)?
            } else {
                age_public_key(
                    &std::fs::read_to_string(&a.key)
                        .with_context(|| format!("cannot read the key file {}", a.key))?,
                )?
            };
            let r = Client::new(&a.server)?
                .act(Method::PUT, &path, Body::Json(json!({"key": key})))
                .await?;
            // Its answer has a message, as a Done's.
            done(ctx, r, None)
        }
        Command::Terminate(a) => {
            let path = format!("/api/v1/studies/{}/terminate", segment(&a.study)?);
            let r = Client::new(&a.server)?
                .act(Method::POST, &path, Body::None)
                .await?;
            done(ctx, r, None)
        }
        Command::Download(a) => {
            let study = segment(&a.study)?;
            let c = Client::new(&a.server)?;
            let list: Vec<ReleaseFiles> = match c
                .send(
                    Method::GET,
                    &format!("/api/v1/studies/{study}/releases"),
                    &Body::None,
                )
                .await?
            {
                Reply::Ok(v, _) => serde_json::from_value(v)?,
                Reply::Problem(p) => return refused(ctx, &p, None),
            };
            let chosen = match a.release {
                Some(n) => list.iter().find(|r| r.index == n),
                // The latest of the kind asked for that this person may receive.
                None => list
                    .iter()
                    .rev()
                    .find(|r| r.contacts == a.contacts && r.may_download)
                    .or_else(|| list.iter().rev().find(|r| r.contacts == a.contacts)),
            };
            let Some(release) = chosen else {
                writeln!(
                    ctx.err,
                    "studyflow: refused: `{study}` has {} release(s){}",
                    list.len(),
                    a.release
                        .map(|n| format!(", none numbered {n}"))
                        .unwrap_or_default()
                )?;
                return Ok(EXIT_FINDINGS);
            };
            if !release.may_download {
                // Not for this person: the server says why (its manifest is refused as the
                // files are), and nothing is written.
                let path = format!(
                    "/api/v1/studies/{study}/releases/{}/MANIFEST.sha256",
                    release.index
                );
                if let Err(p) = c.file(&path).await? {
                    return refused(ctx, &p, None);
                }
                anyhow::bail!(
                    "release {} of {study} lists no file for you, yet its manifest was given",
                    release.index
                );
            }
            private_dir(&a.out)?;
            let mut bytes_total = 0usize;
            for f in &release.files {
                // The manifest's names are plain file names; anything else is not written.
                anyhow::ensure!(
                    plain_name(&f.name),
                    "the release names a file `{}` that is not a plain file name",
                    f.name
                );
                let path = format!(
                    "/api/v1/studies/{study}/releases/{}/{}",
                    release.index, f.name
                );
                let bytes = match c.file(&path).await? {
                    Ok(b) => b,
                    Err(p) => return refused(ctx, &p, None),
                };
                let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                anyhow::ensure!(
                    actual == f.sha256,
                    "{} of release {} arrived other than its manifest says (sha256 {actual}, not {}); nothing more was written",
                    f.name,
                    release.index,
                    f.sha256
                );
                write_private(&a.out.join(&f.name), &bytes)?;
                bytes_total += bytes.len();
            }
            writeln!(
                ctx.out,
                "downloaded release {} of {study} ({}, written {}): {} files, {bytes_total} bytes, to {}; each checked against its manifest",
                release.index,
                release.step,
                release.written_at,
                release.files.len(),
                a.out.display()
            )?;
            Ok(EXIT_OK)
        }
        Command::Tasks(a) => {
            let c = Client::new(&a)?;
            let mut after: Option<String> = None;
            let mut any = false;
            loop {
                let path = match &after {
                    None => "/api/v1/tasks?limit=500".to_owned(),
                    Some(a) => format!("/api/v1/tasks?limit=500&after={a}"),
                };
                let page: Page<TaskView> = match c.send(Method::GET, &path, &Body::None).await? {
                    Reply::Ok(v, _) => serde_json::from_value(v)?,
                    Reply::Problem(p) => return refused(ctx, &p, None),
                };
                for t in &page.items {
                    any = true;
                    writeln!(
                        ctx.out,
                        "{:>6}  {:<40} {:<32} {:<19} {}",
                        t.id,
                        t.study,
                        if t.subject.is_empty() {
                            t.step.clone()
                        } else {
                            format!("{} ({})", t.step, t.subject)
                        },
                        t.actor,
                        t.due
                            .as_deref()
                            .map(|d| format!("due {d}"))
                            .unwrap_or_default()
                    )?;
                    writeln!(
                        ctx.out,
                        "        {}{}",
                        t.title,
                        if t.awaiting_file {
                            " (done; waiting for its file: studyflow task supply)"
                        } else {
                            ""
                        }
                    )?;
                    for line in &t.steps {
                        writeln!(ctx.out, "        - {line}")?;
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            if !any {
                writeln!(ctx.out, "no open tasks for you")?;
            }
            Ok(EXIT_OK)
        }
        Command::Task(TaskArgs { command }) => match command {
            TaskCommand::Complete {
                server,
                note,
                note_file,
                id,
            } => {
                let note = match note_file {
                    None => note,
                    Some(f) if f.as_os_str() == "-" => {
                        let mut text = String::new();
                        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                            .context("cannot read the note from standard input")?;
                        Some(text)
                    }
                    Some(f) => Some(
                        std::fs::read_to_string(&f)
                            .with_context(|| format!("cannot read the note {}", f.display()))?,
                    ),
                };
                let r = Client::new(&server)?
                    .act(
                        Method::POST,
                        &format!("/api/v1/tasks/{id}/complete"),
                        Body::Json(json!({"note": note})),
                    )
                    .await?;
                done(ctx, r, None)
            }
            TaskCommand::Files { server, out, id } => {
                let c = Client::new(&server)?;
                let files: TaskFiles = match c
                    .send(
                        Method::GET,
                        &format!("/api/v1/tasks/{id}/files"),
                        &Body::None,
                    )
                    .await?
                {
                    Reply::Ok(v, _) => serde_json::from_value(v)?,
                    Reply::Problem(p) => return refused(ctx, &p, None),
                };
                for f in &files.prepared {
                    writeln!(ctx.out, "prepared  {}  sha256 {}", f.name, f.sha256)?;
                }
                if let Some(s) = &files.supply {
                    writeln!(
                        ctx.out,
                        "takes     {} ({}, MK403 {}), {} {}{}: studyflow task supply {id} FILE",
                        s.name,
                        s.media,
                        s.point,
                        if s.media == "application/json" {
                            "fields"
                        } else {
                            "columns"
                        },
                        s.columns.join(", "),
                        if s.supplied {
                            "; one supplied waits for the task's completion"
                        } else {
                            ""
                        }
                    )?;
                }
                if files.prepared.is_empty() && files.supply.is_none() {
                    writeln!(ctx.out, "task {id} has no files")?;
                }
                if let Some(out) = out {
                    private_dir(&out)?;
                    for f in &files.prepared {
                        anyhow::ensure!(
                            plain_name(&f.name),
                            "the server names a file `{}` that is not a plain file name",
                            f.name
                        );
                        let bytes = match c
                            .file(&format!("/api/v1/tasks/{id}/files/{}", f.name))
                            .await?
                        {
                            Ok(b) => b,
                            Err(p) => return refused(ctx, &p, None),
                        };
                        let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                        anyhow::ensure!(
                            actual == f.sha256,
                            "{} arrived other than listed (sha256 {actual}, not {}); nothing more was written",
                            f.name,
                            f.sha256
                        );
                        write_private(&out.join(&f.name), &bytes)?;
                    }
                    writeln!(
                        ctx.out,
                        "downloaded {} file(s) to {}, each checked against its sha256",
                        files.prepared.len(),
                        out.display()
                    )?;
                }
                Ok(EXIT_OK)
            }
            TaskCommand::Supply { server, id, file } => {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                // An institution's answer is JSON; what a person extracts or collects is CSV.
                let body = if file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                {
                    Body::JsonFile(&bytes)
                } else {
                    Body::Csv(&bytes)
                };
                let r = Client::new(&server)?
                    .act(Method::PUT, &format!("/api/v1/tasks/{id}/supply"), body)
                    .await?;
                match r {
                    Reply::Ok(v, _) => {
                        let s: Supplied = serde_json::from_value(v)?;
                        writeln!(
                            ctx.out,
                            "{} accepted whole: {} row(s), {} bytes; it is imported when you complete task {id} (studyflow task complete {id})",
                            file.display(),
                            s.rows,
                            s.bytes
                        )?;
                        Ok(EXIT_OK)
                    }
                    Reply::Problem(p) => refused(ctx, &p, Some(&file)),
                }
            }
            TaskCommand::Note { server, id } => {
                let r = Client::new(&server)?
                    .send(
                        Method::GET,
                        &format!("/api/v1/tasks/{id}/note"),
                        &Body::None,
                    )
                    .await?;
                match r {
                    Reply::Ok(v, _) => {
                        let n: NoteView = serde_json::from_value(v)?;
                        match n.note {
                            None => writeln!(ctx.out, "task {id} ({}) has no note", n.step)?,
                            Some(text) => writeln!(ctx.out, "{text}")?,
                        }
                        Ok(EXIT_OK)
                    }
                    Reply::Problem(p) => refused(ctx, &p, None),
                }
            }
        },
        other => unreachable!("not a person's command: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::age_public_key;

    /// The public key is taken from a key, a file of keys, or the identity file `age-keygen`
    /// writes; a secret key alone is refused, so it is never sent.
    #[test]
    fn only_a_public_key_is_taken() {
        let public = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        assert_eq!(age_public_key(public).unwrap(), public);
        let identity = format!(
            "# created: 2026-12-02T12:00:00Z\n# public key: {public}\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"
        );
        assert_eq!(age_public_key(&identity).unwrap(), public);
        let e = age_public_key("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQ\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("secret key") && e.contains("nothing was sent"),
            "{e}"
        );
        assert!(age_public_key("# nothing\n").is_err());
    }

    #[test]
    fn only_plain_names_are_written_below_out() {
        for ok in ["subjects.csv", "MANIFEST.sha256", "cover-letter.txt"] {
            assert!(super::plain_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "C:x",
            "/etc/passwd",
            ".hidden",
        ] {
            assert!(!super::plain_name(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_go_over_https_or_to_this_machine_only() {
        for ok in [
            "https://studyflow.example",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert!(super::check_transport(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://studyflow.example",
            "http://localhost:8080@evil.example",
            "http://127.0.0.1:80@evil.example/",
            "https://user:pw@studyflow.example",
            "ftp://127.0.0.1",
            "localhost:8080",
        ] {
            assert!(super::check_transport(bad).is_err(), "{bad}");
        }
    }
}
