//! What the API takes and gives, as JSON. The CLI's client reads the same types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Sign in with a local account: its password and a current code of its second factor.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignIn {
    pub login: String,
    pub password: String,
    pub code: String,
}

/// A browser session opened: the cookie is set; `csrf` goes in `X-CSRF-Token` on every change.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionOpened {
    pub login: String,
    pub csrf: String,
    pub expires_at: String,
}

/// Signed out here; the identity provider's sign-out page ends the person's session there too
/// (open it in the browser).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SignedOut {
    pub provider_sign_out: String,
}

/// Who is signed in.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    pub login: String,
    pub issuer: String,
    pub subject: String,
    /// When they last proved who they are.
    pub authenticated_at: String,
}

/// A personal token asked for with the account's password and a code.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenRequest {
    pub login: String,
    pub password: String,
    pub code: String,
    /// Which machine or use it is for.
    #[serde(default)]
    pub label: Option<String>,
    /// How long it lives, in days (default 30, at most 90).
    #[serde(default)]
    pub days: Option<i64>,
}

/// A command line asks to sign in through a browser (RFC 8628's device authorization grant):
/// what its personal token is for and how long it lives, as in [`TokenRequest`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeviceAsk {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub days: Option<i64>,
}

/// A sign-in through a browser, waiting: the person opens `verification_path` on this server,
/// signed in, and types `user_code` there (no link fills it in: the person compares it with what
/// their own command line shows, RFC 8628 §5.4); the command line polls
/// `POST /api/v1/device/token` with `device_code` every `interval` seconds until then.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeviceGranting {
    pub device_code: String,
    /// As the person types it (`BCDF-GHJK`; case and hyphen do not matter).
    pub user_code: String,
    /// A path of this server (the page where the code is entered).
    pub verification_path: String,
    /// Seconds until the grant expires.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// The command line's poll of its sign-in through a browser.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DevicePollRequest {
    pub device_code: String,
}

/// A personal token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenIssued {
    pub token: String,
    pub id: String,
    pub expires_at: String,
}

/// A personal token as listed: never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub label: String,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: String,
    pub revoked: bool,
}

/// A new proof of identity for the acts that need a recent one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Reauthenticate {
    pub password: String,
    pub code: String,
}

/// A new password for yourself, proven with the one you have and a current code (a local
/// account; a person of the identity provider changes it there).
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChangePassword {
    pub password: String,
    pub code: String,
    /// At least 12 characters.
    pub new_password: String,
    /// Revoke your other personal tokens too (the one you change it with stays).
    #[serde(default)]
    pub revoke_tokens: bool,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePassword { .. }")
    }
}

/// A second factor begun for you, to replace the one you have once you prove it with a code
/// of it: its key in base32 and as an `otpauth://` link for an authenticator app (RFC 6238: 6
/// digits, 30 seconds, SHA-1). Shown once.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct SecondFactorBegun {
    pub secret: String,
    pub otpauth: String,
}

impl std::fmt::Debug for SecondFactorBegun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecondFactorBegun { .. }")
    }
}

/// A code of the second factor begun, which proves you keep it, from the session or token
/// that began it, within 10 minutes.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct SecondFactorCode {
    pub code: String,
    /// Revoke your other personal tokens too (the one you confirm it with stays).
    #[serde(default)]
    pub revoke_tokens: bool,
}

impl std::fmt::Debug for SecondFactorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorCode")
            .field("revoke_tokens", &self.revoke_tokens)
            .finish_non_exhaustive()
    }
}

/// Your credentials changed: your other browser sessions ended, and your other personal tokens
/// when asked (how many of each); the session or token you changed them with stays.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CredentialsChanged {
    pub sessions_ended: u64,
    pub tokens_revoked: u64,
}

/// An act done, in words, with what it produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Done {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
}

/// Approve the version waiting, if its plan is the one reviewed (`studyflow plan`, or the
/// study's status): what is approved is pinned by its hash (MK403 p.3, p.30.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Approve {
    pub plan_hash: String,
}

/// Refuse the version waiting, the plan reviewed, with the reason its submitter reads (MK403
/// p.3); personal codes in it are masked before it is kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Refuse {
    pub plan_hash: String,
    pub reason: String,
}

/// The age public key (`age1…`, from `age-keygen`) the study's contact list is to be
/// encrypted to for the person giving it (MK403 p.32).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContactKey {
    pub key: String,
}

/// A key taken for the contact list.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContactKeyGiven {
    pub message: String,
    /// How many people's keys the contact list is now encrypted to.
    pub recipients: usize,
    /// SHA-256 of the key as taken (hex), as the audit records it.
    pub key_sha256: String,
}

/// The contract of an external study (MK403 p.5, p.30.2, p.33).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Contract {
    pub number: String,
    /// YYYY-MM-DD.
    pub concluded_on: String,
    /// Who signed a non-disclosure declaration, as the spec names them.
    #[serde(default)]
    pub signatories: Vec<String>,
    #[serde(default)]
    pub measures_checked: bool,
}

/// A task completed, with a note.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Complete {
    #[serde(default)]
    pub note: Option<String>,
}

/// A page of a long list: `items`, and `next` to ask for the page after it (`?after=`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "PageOf{T}")]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next: Option<String>,
}

/// A study in a list.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StudySummary {
    pub id: String,
    pub state: String,
    pub active_version: Option<i64>,
}

/// A study's status.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StudyView {
    pub id: String,
    pub state: String,
    pub since: String,
    pub latest_version: Option<i64>,
    pub plan_hash: Option<String>,
    pub approved_by: Option<String>,
    pub running_version: Option<i64>,
    pub steps: Vec<StepView>,
    pub overdue: Vec<OverdueView>,
    pub releases: Vec<ReleaseView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StepView {
    pub step: String,
    pub per_subject: bool,
    pub runs: usize,
    /// Runs per activity (`done`, `task open`, `timer`, …).
    pub activities: std::collections::BTreeMap<String, usize>,
    pub next: Option<String>,
    pub due: Option<String>,
    pub late: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OverdueView {
    pub step: String,
    pub runs: usize,
    pub open: usize,
    pub due: String,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReleaseView {
    pub step: String,
    pub recipient: String,
    pub written_at: String,
    pub follow_up_events: std::collections::BTreeMap<String, u64>,
}

/// A file of a release, as its manifest lists it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FileView {
    pub name: String,
    pub sha256: String,
}

/// A release of the study's anonymised dataset: `GET …/releases/{n}/{file}` downloads a file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReleaseFiles {
    /// `n`, 0 the oldest.
    pub index: usize,
    pub step: String,
    pub recipient: String,
    pub written_at: String,
    pub follow_up_events: std::collections::BTreeMap<String, u64>,
    /// Empty when the files are not there any more (kept elsewhere, or deleted, MK403 p.35),
    /// and for a person who may not receive this release (`may_download`).
    pub files: Vec<FileView>,
    /// Whether the person asking may receive it (with a recent proof of identity): an
    /// internal study's analysis dataset to its service researchers with access to anonymised
    /// data (p.22.5, p.24), a transfer to the external researcher's authorised persons (p.30),
    /// the contact list to those of them who process personal data (p.32).
    #[serde(default)]
    pub may_download: bool,
    /// The contact list, encrypted to its recipients' keys (p.32), not a dataset.
    #[serde(default)]
    pub contacts: bool,
}

/// An open task of the person asking, with what to do.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TaskView {
    pub id: i64,
    pub study: String,
    pub step: String,
    pub subject: String,
    pub actor: String,
    pub due: Option<String>,
    pub title: String,
    /// The title in Latvian.
    pub title_lv: String,
    pub points: Vec<String>,
    pub steps: Vec<String>,
    /// The steps in Latvian.
    pub steps_lv: Vec<String>,
    /// Done by its person, or sent, and waiting for a file they supply (an extraction or list
    /// sent after the task was completed, an institution's answer): nothing to complete, a
    /// file to send.
    #[serde(default)]
    pub awaiting_file: bool,
}

/// A sealed event of a study's audit. Nothing in it names a data subject: objects are study
/// ids, step ids and study pseudonyms; details are counts, hashes and logins.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditEventView {
    /// Its place in the log (the `after` of the next page).
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    /// The MK403 point the act rests on (`p.17.3`), or empty.
    pub point: String,
    pub detail: serde_json::Value,
    /// Whether what it said of a person — who acted, the object but for its first part, the
    /// detail — was erased once the Service's retention period passed (`studyflow audit
    /// erase`, MK403 p.25.4); the row still verifies.
    #[serde(default)]
    pub erased: bool,
}

/// What an open task has in files: what the engine prepared, and what it takes from you.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TaskFiles {
    /// `GET /api/v1/tasks/{id}/files/{name}` downloads one.
    pub prepared: Vec<FileView>,
    /// `PUT /api/v1/tasks/{id}/supply` sends it.
    pub supply: Option<SupplyView>,
}

/// The file a task takes from its person.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SupplyView {
    pub name: String,
    /// Its media type: `text/csv` (a header row, then a row per record) or `application/json`
    /// (an institution's answer: an array of objects, one per row).
    pub media: String,
    /// The MK403 point it is supplied under.
    pub point: String,
    /// The columns its header may name.
    pub columns: Vec<String>,
    /// Whether a file was supplied and waits for the task's completion to be imported.
    pub supplied: bool,
}

/// A supplied file, accepted whole and put in the inbox.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Supplied {
    pub name: String,
    pub bytes: usize,
    /// Its data rows.
    pub rows: usize,
}

/// The note recorded with a completed task.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NoteView {
    pub id: i64,
    pub step: String,
    pub note: Option<String>,
}
