//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Workflow engine for the research studies of Latvia's State Probation Service (MK403).
#[derive(Debug, Parser)]
#[command(name = "studyflow", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The author's and CI's commands, as `studyflow-check` has them: validate, lsp, schema,
    /// rules, catalogue, calendar, plan.
    #[command(flatten)]
    Check(studyflow_check::Check),
    /// Print the OpenAPI 3.1 document of `studyflow serve`'s API (docs/openapi.json).
    Openapi,
    /// Print the command reference: every command, who runs it, its options (docs/cli.md).
    Commands,
    /// Serve the API (`/api/v1`) to the people of the studies: every act of a person is done
    /// there, by a signed-in identity.
    Serve(Box<ServeArgs>),
    /// Local accounts (Argon2id password and a TOTP second factor): an operator's commands on
    /// the database.
    User(UserArgs),
    /// Sign in to a server — with your password and a code of your second factor, or with
    /// `--device` in a browser where you are signed in (the way for a person of the identity
    /// provider) — and keep a personal token for the commands below.
    Login(LoginArgs),
    /// Revoke the kept personal token and forget it.
    Logout(ServerArgs),
    /// List your personal tokens — the command lines that act as you — or revoke one of them
    /// (`--revoke ID`, as listed: a lost laptop's).
    Tokens(TokensArgs),
    /// Change your own password (a local account): asks for the one you have, a code and the
    /// new one twice. Your browser sessions end; your personal tokens stay.
    Password(PasswordArgs),
    /// Replace your second factor (a new phone; a local account): shows a new key for your
    /// authenticator app and takes a code of it (`--confirm CODE` when not asked at a
    /// terminal). Until then the one you have signs in; your browser sessions end after.
    SecondFactor(SecondFactorArgs),
    /// Submit a new study for approval (its spec's `version` is 1), as the signed-in person.
    Submit(SubmitArgs),
    /// Approve the latest submitted version of a study, pinned to its plan hash (MK403 p.3, p.30.1).
    Approve(ApproveArgs),
    /// Refuse the latest submitted version of a study, pinned to its plan hash, with a reason
    /// for its submitter (MK403 p.3).
    Refuse(RefuseArgs),
    /// Record the contract, the non-disclosure declarations and the security measures of an
    /// external study (MK403 p.5, p.30.2, p.33).
    Contract(ContractArgs),
    /// Start an approved (and, if external, contracted) study.
    Start(StudyArgs),
    /// Give the age public key the study's contact list is to be encrypted to for you (MK403
    /// p.32): an authorised person of the external researcher who processes personal data.
    /// Replaces the key you gave before; the list is then downloaded with `download
    /// --contacts`.
    ContactKey(ContactKeyArgs),
    /// Submit a changed spec of a study as its next version; it needs its own approval.
    Amend(AmendArgs),
    /// Terminate a study: the rest is cancelled, everything identifying destroyed (MK403 p.26).
    Terminate(StudyArgs),
    /// Run workers that execute the ready steps.
    Worker(WorkerArgs),
    /// Show studies, or one study's steps with their states and due dates (overdue flagged).
    Status(StatusArgs),
    /// Where the study's latest anonymised analysis dataset is (the study workspace of an
    /// internal study, MK403 p.22.5, p.24; the transfer to an external researcher, p.30), with
    /// every earlier version.
    Release(StudyOnlyArgs),
    /// Retry a step that failed on bad input, once the input is fixed: an operator's act,
    /// audited with the operator's account.
    Retry(RetryArgs),
    /// List your open tasks, with what each asks of you.
    Tasks(ServerArgs),
    /// Download a release of a study's anonymised dataset (the latest by default) into a
    /// folder, each file checked against the release's manifest: an internal study's analysis
    /// dataset for its service researchers (MK403 p.22.5, p.24), an external study's for the
    /// external researcher's authorised persons (p.30).
    Download(DownloadArgs),
    /// Complete a human task.
    Task(TaskArgs),
    /// Verify or export the hash-chained audit.
    Audit(AuditArgs),
    /// The whole system in one command: a synthetic Service IS, the Punishment Register on
    /// loopback, the recidivism study run through all its phases and follow-up waves, a
    /// summary, the audit verified and every file scanned for identifiers.
    Demo(DemoArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Work folder; each run gets a new `run-N` inside it.
    #[arg(long, default_value = "studyflow-demo")]
    pub dir: PathBuf,
    /// Clients in the synthetic Service IS.
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// The store: the run folder's SQLite file by default, or `postgres://…` (an empty
    /// database: the demo's study must not exist in it yet).
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// Workers running the study's steps side by side, each claiming its own batches.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Follow-up batch window in days (MK403 p.19); 1: one request per due day.
    #[arg(long, default_value_t = 1, value_name = "DAYS", value_parser = clap::value_parser!(u16).range(1..=31))]
    pub batch_window: u16,
    /// Then leave the study on a running server (`studyflow serve`), printing the demo's
    /// accounts, to look around as its people (Ctrl-C stops it).
    #[arg(long)]
    pub serve: bool,
    /// Where `--serve` listens.
    #[arg(long, default_value = "127.0.0.1:8080", requires = "serve")]
    pub listen: String,
}

/// Where the engine's database is.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// The database: a file path or sqlite://PATH (the default, ./studyflow.db), or postgres://…
    #[arg(
        long,
        env = "STUDYFLOW_DATABASE_URL",
        default_value = "studyflow.db",
        value_name = "URL",
        global = true
    )]
    pub database: String,
    /// The key that signs a checkpoint of the audit at each seal (`studyflow audit keygen`),
    /// kept outside the database. Once the audit is signed, give it to every process that
    /// writes events: without it, a process's events wait unsealed and are refused (no MAC)
    /// by the next process that seals with it.
    #[arg(
        long,
        env = "STUDYFLOW_AUDIT_KEY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub audit_key_file: Option<PathBuf>,
    /// The checkpoint log outside the database, each signed checkpoint appended to it
    /// (default: the key file's path and `.checkpoints`). Every host that seals should append
    /// to one log (a shared file): each log protects the seals it saw.
    #[arg(long, env = "STUDYFLOW_AUDIT_LOG", value_name = "FILE", global = true)]
    pub checkpoint_log: Option<PathBuf>,
}

impl EngineArgs {
    /// The checkpoint log: as given, or beside the audit key.
    pub fn checkpoint_log(&self) -> Option<PathBuf> {
        self.checkpoint_log
            .clone()
            .or_else(|| self.beside_key(".checkpoints"))
    }

    /// The audit key file's path with `suffix`: where the installation keeps what goes with
    /// the key (its checkpoint log, its witness policy).
    pub fn beside_key(&self, suffix: &str) -> Option<PathBuf> {
        self.audit_key_file.as_ref().map(|k| {
            let mut name = k.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
    }
}

/// The installation's witness policy, for `audit verify` and `audit cosign`.
#[derive(Debug, Clone, clap::Args)]
pub struct WitnessPolicyArgs {
    /// The installation's witness policy: its witnesses, their addresses and the quorum
    /// (default: the audit key file's path and `.witnesses`, when it exists). Used when no
    /// `--witness` is given.
    #[arg(
        long = "witnesses",
        env = "STUDYFLOW_AUDIT_WITNESSES",
        value_name = "FILE"
    )]
    pub file: Option<PathBuf>,
}

/// The server a person's command goes to, and the personal token it carries.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The studyflow server (`studyflow serve`).
    #[arg(
        long,
        env = "STUDYFLOW_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// Where `studyflow login` keeps the personal token (default:
    /// `$XDG_CONFIG_HOME/studyflow/token`, else `~/.config/studyflow/token`), readable by you only.
    #[arg(long, env = "STUDYFLOW_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Your login, as the spec binds it to you.
    #[arg(long, required_unless_present = "device")]
    pub login: Option<String>,
    /// Sign in through a browser: the command shows a code to enter on the server's `/device`
    /// page, where you are signed in (at the identity provider, or with a local account), and
    /// waits for your approval there (RFC 8628).
    #[arg(long, conflicts_with_all = ["login", "password_file", "code"])]
    pub device: bool,
    /// Read the password from FILE (`-`: standard input) instead of asking for it.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The current code of your authenticator app (asked for when not given).
    #[arg(long)]
    pub code: Option<String>,
    /// What the token is for, shown in `GET /api/v1/tokens`.
    #[arg(long, default_value = "cli")]
    pub label: String,
    /// How long the token lives, in days (at most 90).
    #[arg(long, default_value_t = 30)]
    pub days: i64,
}

#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Revoke the token whose id begins with this (at least 8 characters of it, as listed).
    #[arg(long, value_name = "ID")]
    pub revoke: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct PasswordArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Read the password you have from FILE (`-`: standard input) instead of asking for it.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read the new password from FILE instead of asking for it twice (at least 12
    /// characters).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
    /// The current code of your authenticator app (asked for when not given).
    #[arg(long)]
    pub code: Option<String>,
    /// Revoke your other personal tokens too (this command line's stays): when one may be in
    /// someone else's hands.
    #[arg(long)]
    pub revoke_tokens: bool,
}

#[derive(Debug, clap::Args)]
pub struct SecondFactorArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Read your password from FILE (`-`: standard input) instead of asking for it.
    #[arg(long, value_name = "FILE", conflicts_with = "confirm")]
    pub password_file: Option<PathBuf>,
    /// The current code of the second factor you have (asked for when not given).
    #[arg(long, conflicts_with = "confirm")]
    pub code: Option<String>,
    /// End a replacement begun before from this command line (within 10 minutes): a code of
    /// the new key, as the app shows it now.
    #[arg(long, value_name = "CODE")]
    pub confirm: Option<String>,
    /// Revoke your other personal tokens too (this command line's stays) once the new second
    /// factor is confirmed.
    #[arg(long)]
    pub revoke_tokens: bool,
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The spec file.
    pub spec: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The hash of the plan you reviewed (`studyflow plan`, or what `submit` printed): only
    /// that plan is approved (MK403 p.3, p.30.1).
    #[arg(long, value_name = "HASH")]
    pub plan_hash: String,
    /// The study's id (its spec's `id`).
    pub study: String,
}

#[derive(Debug, clap::Args)]
pub struct ContactKeyArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The study's id (its spec's `id`).
    pub study: String,
    /// Your age public key (`age1…`, as `age-keygen` prints it), or a file holding it.
    #[arg(value_name = "KEY|FILE")]
    pub key: String,
}

#[derive(Debug, clap::Args)]
pub struct RefuseArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The hash of the plan you reviewed: only that version is refused.
    #[arg(long, value_name = "HASH")]
    pub plan_hash: String,
    /// Why, for the submitter (no personal data of a data subject; personal codes are masked).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// The study's id (its spec's `id`).
    pub study: String,
}

#[derive(Debug, clap::Args)]
pub struct ContractArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The contract's number.
    #[arg(long)]
    pub number: String,
    /// When it was concluded, YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub concluded_on: jiff::civil::Date,
    /// A signatory of a non-disclosure declaration; once per person.
    #[arg(long = "nda", value_name = "NAME")]
    pub signatories: Vec<String>,
    /// The external researcher's security measures (MK403 p.33.3–33.5) were checked.
    #[arg(long)]
    pub measures_checked: bool,
    /// The study's id (its spec's `id`).
    pub study: String,
}

#[derive(Debug, clap::Args)]
pub struct StudyArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The study's id (its spec's `id`).
    pub study: String,
}

#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Which release, 0 the oldest (default: the latest dataset you may receive).
    #[arg(long, conflicts_with = "contacts")]
    pub release: Option<usize>,
    /// The latest contact list instead (encrypted to the keys its recipients gave, MK403
    /// p.32; `age -d -i YOUR-KEY contacts.csv.age` opens it).
    #[arg(long)]
    pub contacts: bool,
    /// The folder to write the files in (created, readable by you only).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The study's id (its spec's `id`).
    pub study: String,
}

#[derive(Debug, clap::Args)]
pub struct AmendArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The study's id (its spec's `id`).
    pub study: String,
    /// The changed spec, with `version` raised.
    pub spec: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Run with an audit that no key signs — a hash chain that anyone who can write the
    /// database can rewrite unseen — for a trial on one machine. Without it the audit key is
    /// required (`--audit-key-file`; `studyflow audit keygen` makes one).
    #[arg(long)]
    pub unsigned_audit: bool,
    /// The installation's witnesses, told to monitors (`GET /api/v1/audit/witnesses`) with the
    /// latest checkpoint their quorum cosigned.
    #[command(flatten)]
    pub witnesses: WitnessPolicyArgs,
    /// Where to listen: loopback behind a reverse proxy that terminates TLS, or any address
    /// with --tls-cert and --tls-key (docs/serve.md); the session cookie is `Secure`.
    #[arg(long, env = "STUDYFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The master key, to open the task notes sealed under a study's keys for the persons
    /// who may read them (MK403 p.26); without it they are reported sealed.
    #[arg(long, env = "STUDYFLOW_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Serve over TLS with this certificate chain (PEM, the server's certificate first),
    /// instead of behind a reverse proxy that terminates TLS.
    #[arg(
        long,
        env = "STUDYFLOW_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM), readable by its owner only.
    #[arg(
        long,
        env = "STUDYFLOW_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// The workers' work folder (as `worker --work-dir`): the files the engine prepared for a
    /// task are handed out from its `outbox/`, and what a person supplies for a task is
    /// checked and put in its `inbox/`. Without it, tasks take no files through the server.
    #[arg(long, env = "STUDYFLOW_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// A reverse proxy in front of the server whose `X-Forwarded-For` names the client, for
    /// the sign-in limits and the audit; once per proxy address.
    #[arg(long = "trusted-proxy", value_name = "ADDRESS")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The Service's identity provider (OpenID Connect), its issuer URL exactly as its
    /// discovery document states it: the Service's people sign in there
    /// (`/api/v1/oidc/login`).
    #[arg(long, env = "STUDYFLOW_OIDC_ISSUER", value_name = "URL", requires_all = ["oidc_client_id", "oidc_client_secret_file", "oidc_redirect_uri"])]
    pub oidc_issuer: Option<String>,
    /// This installation's client id at the provider.
    #[arg(long, env = "STUDYFLOW_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// The client's secret, in a file only its owner can read.
    #[arg(long, env = "STUDYFLOW_OIDC_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The client's secret before the current one, in a file only its owner can read,
    /// repeatable, while the provider changes over: the sessions it sealed still open and are
    /// sealed again under the current secret at their next confirmation. Drop it after 12
    /// hours (the longest session).
    #[arg(
        long = "oidc-previous-client-secret-file",
        env = "STUDYFLOW_OIDC_PREVIOUS_CLIENT_SECRET_FILE",
        value_name = "FILE",
        value_delimiter = ',',
        requires = "oidc_issuer"
    )]
    pub oidc_previous_client_secret_files: Vec<PathBuf>,
    /// The callback registered at the provider: `https://<this server>/api/v1/oidc/callback`.
    #[arg(long, env = "STUDYFLOW_OIDC_REDIRECT_URI", value_name = "URL")]
    pub oidc_redirect_uri: Option<String>,
    /// The scopes asked for at sign-in. The provider must give a refresh token with them (the
    /// session is confirmed with it every 5 minutes): many give one only for `offline_access`
    /// (then `--oidc-scope "openid profile offline_access"`).
    #[arg(long, env = "STUDYFLOW_OIDC_SCOPE", value_name = "SCOPES", default_value = studyflow_identity::oidc::DEFAULT_SCOPE)]
    pub oidc_scope: String,
    /// An authentication context class the Service accepts, as the provider names it (e.g.
    /// its class for a sign-in with a second factor), repeatable: asked for at sign-in, and a
    /// sign-in of another class is refused. Without it the provider's own factors are not
    /// checked.
    #[arg(
        long = "oidc-acr",
        env = "STUDYFLOW_OIDC_ACR",
        value_name = "CLASS",
        value_delimiter = ','
    )]
    pub oidc_acr: Vec<String>,
    /// An authentication method (RFC 8176: `otp`, `hwk`, `mfa`, …) of which a sign-in at the
    /// provider must have used at least one, by the ID token's `amr`, repeatable: for a
    /// provider that names its second factor by method rather than by class (`--oidc-acr`).
    #[arg(
        long = "oidc-amr",
        env = "STUDYFLOW_OIDC_AMR",
        value_name = "METHOD",
        value_delimiter = ','
    )]
    pub oidc_amr: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a local account. With `--enrol`, prints a one-time code with which the person
    /// chooses their own password and second factor on the server's `/enrol` page; otherwise
    /// the operator sets the password and gets the second factor's secret and `otpauth://` URI
    /// once, for the person's authenticator app.
    Add {
        #[command(flatten)]
        engine: EngineArgs,
        /// The login, as specs bind it to the person (`login:`).
        login: String,
        /// The name shown to the person.
        #[arg(long)]
        name: String,
        /// Read the first password from FILE (`-`: standard input) instead of asking for it.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// A person outside the Service (an external researcher's team): the account never
        /// acts in a role of the Service, whatever a spec binds to its login.
        #[arg(long)]
        external: bool,
        /// A person who signs in at the Service's identity provider: their subject there
        /// (the ID token's `sub`). The account then has no password of its own.
        #[arg(long, value_name = "SUB", conflicts_with = "password_file")]
        oidc_subject: Option<String>,
        /// The person chooses their own password and second factor at first sign-in (the
        /// server's `/enrol` page), with the one-time code printed here, good for 7 days: the
        /// operator is never shown either.
        #[arg(long, conflicts_with_all = ["password_file", "oidc_subject"])]
        enrol: bool,
    },
    /// Let an account locked after failed sign-ins sign in again, its secrets unchanged.
    Unlock {
        #[command(flatten)]
        engine: EngineArgs,
        login: String,
    },
    /// List the local accounts.
    List {
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Disable an account: it signs in no more, and its sessions and tokens are revoked.
    Disable {
        #[command(flatten)]
        engine: EngineArgs,
        login: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[command(flatten)]
        engine: EngineArgs,
        login: String,
    },
    /// A new password and second factor for an account; its sessions and tokens are revoked.
    Reset {
        #[command(flatten)]
        engine: EngineArgs,
        login: String,
        /// Read the new password from FILE (`-`: standard input) instead of asking for it.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// The person chooses the new password and second factor (the server's `/enrol`
        /// page) with the one-time code printed here, good for 7 days.
        #[arg(long, conflicts_with = "password_file")]
        enrol: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Run with an audit that no key signs — a hash chain that anyone who can write the
    /// database can rewrite unseen — for a trial on one machine. Without it the audit key is
    /// required (`--audit-key-file`; `studyflow audit keygen` makes one).
    #[arg(long)]
    pub unsigned_audit: bool,
    /// Run until nothing is ready, then exit.
    #[arg(long)]
    pub once: bool,
    /// Workers in this process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Run the placeholder data plane, which moves no data and only records what each step
    /// would do (for trying a study out; never for a real one).
    #[arg(long)]
    pub placeholder: bool,
    /// Subjects the placeholder data plane makes up for a cohort.
    #[arg(long, env = "STUDYFLOW_PLACEHOLDER_COHORT", default_value_t = 20)]
    pub cohort_size: usize,
    /// The master key file that wraps every study's keys: 64 hexadecimal digits, readable by the
    /// service account only (`demo` makes one; or `head -c32 /dev/urandom | xxd -p -c64`).
    #[arg(long, env = "STUDYFLOW_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<std::path::PathBuf>,
    /// The work folder: `releases/`, `outbox/`, `inbox/` and `recipients/` below it.
    #[arg(long, env = "STUDYFLOW_WORK_DIR", value_name = "DIR")]
    pub work_dir: Option<std::path::PathBuf>,
    /// The registries' API (docs/registries-api.md), e.g. https://registries.example.lv.
    #[arg(long, env = "STUDYFLOW_REGISTRIES_URL", value_name = "URL")]
    pub registries: Option<String>,
    /// The Service IS for automated extraction: a JSON file with `url`, `query` and `columns`
    /// (catalogue key → column), or a CSV export.
    #[arg(long, env = "STUDYFLOW_SERVICE_IS", value_name = "FILE")]
    pub service_is: Option<std::path::PathBuf>,
    /// Follow-up batch window in days (MK403 p.19): the subjects of a wave due within the same
    /// window are asked about in one request, on the window's last due day. 1: one request per
    /// due day. Applies to cohorts formed after the change.
    #[arg(long, env = "STUDYFLOW_BATCH_WINDOW", default_value_t = 1, value_name = "DAYS", value_parser = clap::value_parser!(u16).range(1..=31))]
    pub batch_window: u16,
    /// How long an idle worker waits before looking again, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A study's id (its spec's `id`): its steps, with their states and due dates; without it,
    /// every study.
    pub study: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StudyOnlyArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The study's id (its spec's `id`).
    pub study: String,
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The study's id (its spec's `id`).
    pub study: String,
    /// The step's id, as `status` lists it.
    pub step: String,
}

#[derive(Debug, clap::Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub command: TaskCommand,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Complete one of your tasks.
    Complete {
        #[command(flatten)]
        server: ServerArgs,
        /// A note recorded with it (personal codes are masked; sealed under the study's keys on a
        /// step with personal data, MK403 p.26). A command line shows in the process list and
        /// the shell's history: prefer --note-file for anything about a person.
        #[arg(long, conflicts_with = "note_file")]
        note: Option<String>,
        /// The note read from FILE, or `-` for standard input.
        #[arg(long, value_name = "FILE")]
        note_file: Option<std::path::PathBuf>,
        /// The task's id, from `studyflow tasks`.
        id: i64,
    },
    /// What the engine prepared for an open task of yours (a request and its cover letter, the
    /// p.8 notice) and the file it takes from you; with --out, the prepared files downloaded
    /// there, each checked against its sha256.
    Files {
        #[command(flatten)]
        server: ServerArgs,
        /// A folder to download the prepared files to (made owner-only).
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// The task's id.
        id: i64,
    },
    /// Supply the file an open task of yours takes — the manual Service IS extraction (MK403
    /// p.22.1), the consented contacts (p.31, p.32), an institution's answer to a secure
    /// electronic request (p.12.3, p.14.2) — through the server: checked whole, and refused
    /// whole with a report by row, or kept for the import when you complete the task.
    Supply {
        #[command(flatten)]
        server: ServerArgs,
        /// The task's id.
        id: i64,
        /// The file: CSV with a header row, or an institution's answer as `.json`.
        file: std::path::PathBuf,
    },
    /// Show the note recorded with a completed task you may do. A note on a step with personal
    /// data is sealed under the study's keys (MK403 p.26): the server opens it when it holds
    /// the master key, and once the keys are destroyed nothing opens it.
    Note {
        #[command(flatten)]
        server: ServerArgs,
        /// The task's id.
        id: i64,
    },
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the chain and its signed checkpoints; exit 1 at the first edited, deleted or
    /// reordered row, or a checkpoint that does not match or is not signed by the audit key.
    Verify {
        #[command(flatten)]
        engine: EngineArgs,
        /// The audit's public key (`name+id+key`, or a file holding it): every checkpoint must
        /// carry its signature. Taken from `--audit-key-file` when that is given.
        #[arg(long, env = "STUDYFLOW_AUDIT_PUBLIC_KEY", value_name = "KEY|FILE")]
        public_key: Option<String>,
        /// Verify a copy made by `audit export` instead of the database.
        #[arg(long, value_name = "FILE", conflicts_with = "proof")]
        export: Option<PathBuf>,
        /// Verify a proof made by `audit prove` instead of the database: that its row is in the
        /// log its checkpoint names, signed by the audit key (needs `--public-key` or
        /// `--audit-key-file`).
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
        /// A witness's public key (`name+id+key`, or a file holding it), repeatable: each must
        /// have cosigned a checkpoint in the checkpoint log (`audit cosign`) that the chain
        /// still matches.
        #[arg(long = "witness", value_name = "KEY|FILE")]
        witnesses: Vec<String>,
        /// Each witness's address, in the order of `--witness`: it is asked how far it has
        /// cosigned, and the checkpoint log must hold that cosignature (without it, the log's
        /// own latest cosigned checkpoint is trusted to be the witness's latest).
        #[arg(long = "witness-url", value_name = "URL")]
        witness_urls: Vec<String>,
        /// How many of the `--witness`es must hold (k of n; all unless given): one that cannot
        /// be asked, or whose cosignature the checkpoint log does not hold as it says, is then
        /// reported and not counted, and the audit verifies on the others.
        #[arg(long = "witness-quorum", value_name = "K")]
        witness_quorum: Option<usize>,
        #[command(flatten)]
        policy: WitnessPolicyArgs,
    },
    /// Ask a witness to cosign the audit's latest signed checkpoint (C2SP tlog-witness), with
    /// the consistency proof from the last one it cosigned; the cosigned checkpoint is appended
    /// to the checkpoint log. Run it after seals (e.g. hourly): a history rewritten after a
    /// cosignature is then caught by `audit verify --witness`, and refused by the witness.
    Cosign {
        #[command(flatten)]
        engine: EngineArgs,
        /// The witness's address (its `add-checkpoint` is under it), e.g.
        /// `https://witness.example.lv`. Without it and `--witness`, every witness of the
        /// installation's witness policy (`--witnesses`) is asked.
        #[arg(long, value_name = "URL", requires = "witness")]
        url: Option<String>,
        /// The witness's public key (`name+id+key`, or a file holding it).
        #[arg(long = "witness", value_name = "KEY|FILE", requires = "url")]
        witness: Option<String>,
        #[command(flatten)]
        policy: WitnessPolicyArgs,
    },
    /// Make a witness's key (to witness another installation's audit log), in a new file only
    /// its owner can read; print its public key for that installation's `audit verify`.
    WitnessKeygen {
        /// The witness's name, e.g. `witness.example.lv/studyflow`.
        #[arg(long)]
        name: String,
        /// The new key file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Witness another installation's audit log over HTTP (C2SP tlog-witness `add-checkpoint`):
    /// cosign each checkpoint of the log whose consistency with the last one cosigned is
    /// proved, and nothing else.
    Witness {
        /// The witness's key file (`audit witness-keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The witnessed log's public key (`name+id+key`, or a file holding it).
        #[arg(long, value_name = "KEY|FILE")]
        log_key: String,
        /// Where the latest cosigned checkpoint is kept (written whole before each answer).
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Start a new witness: the state file must not exist yet (without it, it must).
        #[arg(long)]
        init: bool,
    },
    /// Make a key that signs the audit's checkpoints, in a new file only its owner can read;
    /// print its public key (publish it in the installation's documents).
    Keygen {
        /// The log's name, unique to the installation, e.g. `vpd.gov.lv/studyflow/audit`.
        #[arg(long)]
        name: String,
        /// The new key file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Erase what the audit says of a person once the Service's retention period for it has
    /// passed (MK403 p.25.4): the actor, the detail and the object (but for its first part) of
    /// every sealed event before `--before` acted by them, about their account, or naming
    /// them in its detail. The chain, the Merkle tree and every signed checkpoint still
    /// verify (the rows' hashes take the payload's digest); a sealed event lists the rows
    /// erased and names nobody, and `audit verify` holds every erased row to it. Rows sealed
    /// before schema 15 keep their payload (their hashes take it itself): the count is
    /// printed. An operator's command; on a signed audit it needs the audit key.
    Erase {
        #[command(flatten)]
        engine: EngineArgs,
        /// The person's login.
        #[arg(long)]
        person: String,
        /// Another text the audit's details may name them by, as a whole value (e.g. their
        /// name as a spec gave it); repeatable.
        #[arg(long = "also", value_name = "TEXT")]
        names: Vec<String>,
        /// Only events before this day (its midnight in Riga), e.g. the end of the retention
        /// period; at the latest tomorrow (everything recorded so far).
        #[arg(long, value_name = "YYYY-MM-DD")]
        before: jiff::civil::Date,
        /// List the rows it would erase (number, time, action) and change nothing: erasing
        /// cannot be undone.
        #[arg(long)]
        dry_run: bool,
    },
    /// Prove that one sealed event is in the signed log: write, as JSON, its row, its audit
    /// path in the Merkle tree (RFC 6962) and the latest signed checkpoint. Anyone with the
    /// audit's public key checks it with `audit verify --proof FILE`, without the database.
    Prove {
        #[command(flatten)]
        engine: EngineArgs,
        /// The row's number (`seq`, as `audit export` and the audit pages show it).
        #[arg(long)]
        seq: i64,
    },
    /// Write every audit row as a JSON line, then the signed checkpoints and the head.
    Export {
        #[command(flatten)]
        engine: EngineArgs,
    },
}
