//! What a person sees and supplies, built once for the JSON API and the pages alike: a
//! study, the studies, a study's releases and audit, a person's tasks and a task's files; the
//! checks before a supplied file is read and its taking. Each function checks who asks (the
//! engine's role checks) and answers with the API's types or a [`Problem`].

use super::*;

pub(crate) fn instant(us: i64) -> String {
    from_micros(us).to_string()
}

pub(crate) fn day(us: i64) -> String {
    riga_date(from_micros(us)).to_string()
}

/// A deadline's last day (deadlines are the instant after it).
pub(crate) fn last_day(us: i64) -> String {
    day(us - 1)
}

/// Revokes the personal token whose id (its hash in hex) is `id`, if it is `who`'s own; any
/// other, or none, is not found (the API's and the tokens page's revocation alike).
pub(crate) async fn revoke_own_token(app: &App, who: &Identity, id: &str) -> Result<()> {
    let hash = hex::decode(id).map_err(|_| Problem::not_found("no such token of yours"))?;
    app.accounts
        .revoke(who, &hash, app.engine.now())
        .await
        .map_err(|_| Problem::not_found("no such token of yours"))
}

/// The studies `who` is involved in (the API's list and the studies page alike).
pub(crate) async fn studies_view(app: &App, who: &Identity) -> Result<Vec<StudySummary>> {
    Ok(app
        .engine
        .studies_of(who)
        .await?
        .into_iter()
        .map(|s| StudySummary {
            id: s.id,
            state: s.state.as_str().to_owned(),
            active_version: s.active_version,
        })
        .collect())
}

/// A study the person may see, or 404 as for one that does not exist.
pub(crate) async fn visible(app: &App, who: &Identity, study: &str) -> Result<()> {
    if app.engine.involved(study, who).await? {
        Ok(())
    } else {
        Err(Problem::not_found(format!("no study `{study}` of yours")))
    }
}

/// A study as its persons see it (the API's study and the study page alike); 404 to others.
pub(crate) async fn study_view(app: &App, who: &Identity, id: &str) -> Result<StudyView> {
    visible(app, who, id).await?;
    let s = app
        .engine
        .status(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no study `{id}` of yours")))?;
    Ok(StudyView {
        id: s.study,
        state: s.state.as_str().to_owned(),
        since: instant(s.since),
        latest_version: s.latest.as_ref().map(|v| v.version),
        plan_hash: s.latest.as_ref().map(|v| v.plan_hash.clone()),
        approved_by: s
            .latest
            .as_ref()
            .and_then(|v| v.approved.as_ref().map(|a| a.0.clone())),
        running_version: s.running_version,
        steps: s
            .steps
            .into_iter()
            .map(|st| StepView {
                step: st.step,
                per_subject: st.per_subject,
                runs: st.runs,
                activities: st
                    .activities
                    .into_iter()
                    .map(|(a, n)| (a.as_str().to_owned(), n))
                    .collect(),
                next: st.next.map(day),
                due: st.due.map(last_day),
                late: st.late,
                reason: st.reason,
            })
            .collect(),
        overdue: s
            .overdue
            .into_iter()
            .map(|o| OverdueView {
                step: o.step,
                runs: o.runs,
                open: o.open,
                due: last_day(o.due),
                rule: o.rule,
            })
            .collect(),
        releases: s
            .releases
            .into_iter()
            .map(|r| ReleaseView {
                step: r.step,
                recipient: r.recipient,
                written_at: instant(r.written_at),
                follow_up_events: r.follow_up_events,
            })
            .collect(),
    })
}

/// A study's releases with their files (the API's list and the study page alike).
pub(crate) async fn releases_view(
    app: &App,
    who: &Identity,
    id: &str,
) -> Result<Vec<ReleaseFiles>> {
    visible(app, who, id).await?;
    // Each release's files to those who may receive it only: the others see that it was
    // written, and for whom.
    Ok(app
        .engine
        .releases_seen_by(id, who)
        .await?
        .into_iter()
        .enumerate()
        .map(|(index, (r, may))| ReleaseFiles {
            index,
            files: if may {
                release_files(&r.folder).unwrap_or_default()
            } else {
                Vec::new()
            },
            may_download: may,
            contacts: r.contacts,
            step: r.step,
            recipient: r.recipient,
            written_at: instant(r.written_at),
            follow_up_events: r.follow_up_events,
        })
        .collect())
}

/// The manifest's name in a release.
pub(crate) const MANIFEST: &str = "MANIFEST.sha256";

/// A release's files as its manifest lists them, and the manifest itself.
pub(crate) fn release_files(folder: &std::path::Path) -> Option<Vec<FileView>> {
    let mut files: Vec<FileView> = studyflow_dataplane::release::manifest(folder)
        .ok()?
        .into_iter()
        .map(|(name, sha256)| FileView { name, sha256 })
        .collect();
    let manifest = std::fs::read(folder.join(MANIFEST)).ok()?;
    files.push(FileView {
        name: MANIFEST.to_owned(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&manifest)),
    });
    Some(files)
}

/// A file of release `n` of study `id` for `who`, as its manifest lists it and only after its
/// sha256 matched, the download audited (the API and the study page alike; MK403 p.24, p.30):
/// `release.download_started` before a byte goes, then `release.downloaded` before the last
/// chunk goes, or `release.download_broken` with the bytes handed over when the transfer
/// stops short (the client went away, the file changed). A `HEAD` request (`head`) gets the
/// headers alone, the length and sha256 included, and hands nothing over: it is not audited.
pub(crate) async fn release_file(
    app: &Arc<App>,
    who: &Identity,
    id: &str,
    n: usize,
    file: &str,
    head: bool,
) -> Result<Response> {
    let release = app.engine.release_for(id, n, who).await?;
    let files = release_files(&release.folder).ok_or_else(|| {
        Problem::new(
            StatusCode::GONE,
            "gone",
            format!("the files of release {n} of `{id}` are not there any more"),
        )
    })?;
    // Only a file the manifest names, or the manifest (no path of the client's reaches the
    // disk), and only as the manifest says it is.
    // A plain file name only, whatever a manifest on disk says: nothing outside the folder.
    let plain = |n: &str| !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\', '\0']);
    let Some(FileView { name, sha256: hash }) =
        files.into_iter().find(|f| f.name == file && plain(&f.name))
    else {
        return Err(Problem::not_found(format!(
            "release {n} of `{id}` has no file `{}`",
            file.chars().take(80).collect::<String>()
        )));
    };
    let gone = || {
        Problem::new(
            StatusCode::GONE,
            "gone",
            format!("`{name}` of release {n} is not there any more"),
        )
    };
    let mut file = tokio::fs::File::open(release.folder.join(&name))
        .await
        .map_err(|_| gone())?;
    // Checked whole against the manifest before a byte is sent, then sent from the same
    // handle in chunks (a release of a large study is not held in memory), checked again as
    // it goes: a file changed meanwhile ends the transfer with an error, not a wrong file. A
    // `HEAD` is checked the same way: its sha256 header is the file's, not only the
    // manifest's word.
    let (actual, length) = digest_of(&mut file).await.map_err(|_| gone())?;
    if actual != hash {
        tracing::error!(study = %id, release = n, file = %name, "a release file does not match its manifest");
        return Err(Problem::internal());
    }
    {
        use tokio::io::AsyncSeekExt as _;
        file.seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(|_| gone())?;
    }
    let point = if release.to_external { "p.30" } else { "p.24" };
    let detail =
        serde_json::json!({"release": n, "step": release.step, "file": name, "sha256": hash});
    let end = AuditedEnd {
        app: app.clone(),
        who: who.clone(),
        study: id.to_owned(),
        point,
        detail,
    };
    let started = end.record("release.download_started", end.detail.clone());
    let mut r = if head {
        axum::body::Body::empty().into_response()
    } else if length == 0 {
        // An empty body is never read (HTTP/1.1 sends nothing after the headers): handed
        // over whole here, both events by a task of its own (a client going meanwhile leaves
        // no start without its end).
        let done = end.record("release.downloaded", end.detail.clone());
        tokio::spawn(async move {
            started.await?;
            done.await
        })
        .await
        .map_err(|_| Problem::internal())??;
        axum::body::Body::empty().into_response()
    } else {
        started.await?;
        axum::body::Body::from_stream(checked_chunks(file, hash.clone(), length, end))
            .into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(|_| Problem::internal())?,
    );
    h.insert(
        "x-content-sha256",
        HeaderValue::from_str(&hash).map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

/// How a file is read and sent: 64 KiB at a time.
const CHUNK: usize = 64 * 1024;

/// The sha256 (hex) and length of what `file` holds from where it stands, read in chunks.
async fn digest_of(file: &mut tokio::fs::File) -> std::io::Result<(String, u64)> {
    use sha2::Digest as _;
    use tokio::io::AsyncReadExt as _;
    let (mut hasher, mut buf, mut length) = (sha2::Sha256::new(), vec![0u8; CHUNK], 0u64);
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), length));
        }
        hasher.update(&buf[..n]);
        length += n as u64;
    }
}

/// How the end of a file's transfer is told: [`TransferEnd::complete`] before its last chunk
/// goes, or [`TransferEnd::broken`] when it stops short.
pub(crate) trait TransferEnd: Send + 'static {
    /// Every byte but the last chunk's handed over, the whole checked: the transfer is
    /// complete once that chunk goes. An error keeps it back and breaks the transfer off.
    fn complete(&mut self) -> futures_util::future::BoxFuture<'static, std::io::Result<()>>;
    /// Stopped with `sent` bytes of `length` handed over: the client went away (the response
    /// body was dropped), the file changed or could not be read, or `complete` failed.
    fn broken(&mut self, sent: u64, length: u64);
}

/// The audit of a release file's transfer ([`release_file`]).
struct AuditedEnd {
    app: Arc<App>,
    who: Identity,
    study: String,
    point: &'static str,
    detail: serde_json::Value,
}

impl AuditedEnd {
    /// The recording of `action` about the transfer, owning what it needs (to be awaited
    /// here or by a task of its own).
    fn record(
        &self,
        action: &'static str,
        detail: serde_json::Value,
    ) -> impl std::future::Future<Output = std::result::Result<(), studyflow_runtime::EngineError>>
    + Send
    + 'static {
        let (app, who, study, point) = (
            self.app.clone(),
            self.who.clone(),
            self.study.clone(),
            self.point,
        );
        async move {
            app.engine
                .record_read(&who, action, &study, point, detail)
                .await
        }
    }
}

impl TransferEnd for AuditedEnd {
    fn complete(&mut self) -> futures_util::future::BoxFuture<'static, std::io::Result<()>> {
        let done = self.record("release.downloaded", self.detail.clone());
        Box::pin(async move { done.await.map_err(|e| std::io::Error::other(e.to_string())) })
    }

    fn broken(&mut self, sent: u64, length: u64) {
        let mut detail = self.detail.clone();
        detail["bytes_sent"] = sent.into();
        detail["bytes"] = length.into();
        let broken = self.record("release.download_broken", detail);
        // Told from a drop, where nothing can be awaited: recorded by a task of its own on
        // the server's runtime (a body is dropped on it).
        let study = self.study.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(study = %study, "a broken transfer could not be audited: no runtime");
            return;
        };
        runtime.spawn(async move {
            if let Err(e) = broken.await {
                tracing::error!(study = %study, error = %e, "a broken transfer could not be audited");
            }
        });
    }
}

/// A transfer's state, telling its end when it goes ([`TransferEnd`]).
struct Sending<E: TransferEnd> {
    file: tokio::fs::File,
    hasher: sha2::Sha256,
    expected: String,
    length: u64,
    left: u64,
    /// Bytes handed over so far.
    sent: u64,
    /// The chunk read last, sent once the next one is read, or after the check.
    held: Option<Bytes>,
    end: E,
    /// Whether `end` was told, or is being told, the transfer is complete: its last chunk
    /// released. From then on nothing else is told, whatever the client does.
    complete: bool,
}

impl<E: TransferEnd> Drop for Sending<E> {
    fn drop(&mut self) {
        if !self.complete {
            self.end.broken(self.sent, self.length);
        }
    }
}

/// The first `length` bytes of `file`, from where it stands, as chunks, their sha256 checked
/// against `expected` before the last chunk goes: the response says its length, so the
/// transfer is complete only with that last chunk, which a file changed since it was checked
/// never gets (the stream ends with an error there and the transfer breaks off). `end` hears
/// of the end either way, whenever the stream is dropped before it is complete included.
fn checked_chunks<E: TransferEnd>(
    file: tokio::fs::File,
    expected: String,
    length: u64,
    end: E,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    use sha2::Digest as _;
    use tokio::io::AsyncReadExt as _;
    let changed = || std::io::Error::other("the file changed while it was sent");
    futures_util::stream::unfold(
        Some(Sending {
            file,
            hasher: sha2::Sha256::new(),
            expected,
            length,
            left: length,
            sent: 0,
            held: None,
            end,
            complete: false,
        }),
        move |state| async move {
            let mut s = state?;
            if s.left == 0 {
                // All read: the last chunk goes only if the whole is as checked, and once the
                // end is told.
                if hex::encode(s.hasher.finalize_reset()) != s.expected {
                    return Some((Err(changed()), None));
                }
                // Told by a task of its own, so the client going away meanwhile cannot cut the
                // telling in two; once begun, the transfer is complete or not by its outcome.
                s.complete = true;
                let told = match tokio::spawn(s.end.complete()).await {
                    Ok(told) => told,
                    Err(e) => Err(std::io::Error::other(e)),
                };
                if let Err(e) = told {
                    s.complete = false;
                    return Some((Err(e), None));
                }
                return s.held.take().map(|last| (Ok(last), None));
            }
            let mut buf = vec![0u8; CHUNK.min(usize::try_from(s.left).unwrap_or(CHUNK))];
            match s.file.read(&mut buf).await {
                // Shorter than it was: changed.
                Ok(0) => Some((Err(changed()), None)),
                Ok(n) => {
                    buf.truncate(n);
                    s.hasher.update(&buf);
                    s.left -= n as u64;
                    let previous = s.held.replace(Bytes::from(buf)).unwrap_or_default();
                    // The first chunk is held: an empty one goes in its place.
                    s.sent += previous.len() as u64;
                    Some((Ok(previous), Some(s)))
                }
                Err(e) => Some((Err(e), None)),
            }
        },
    )
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub(crate) struct AuditQuery {
    pub limit: Option<i64>,
    pub after: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<String>,
    pub until: Option<String>,
}

/// A page of a study's audit for `who` (the API and the audit page alike): narrowed by actor,
/// action and days (Riga time), paged by sequence number.
pub(crate) async fn audit_view(
    app: &App,
    who: &Identity,
    id: &str,
    q: AuditQuery,
) -> Result<Page<AuditEventView>> {
    let midnight = |name: &str, text: &Option<String>, next: bool| -> Result<Option<i64>> {
        let Some(text) = text.as_ref().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let d: jiff::civil::Date = text
            .parse()
            .map_err(|_| Problem::bad_request(format!("`{name}` is a day (YYYY-MM-DD)")))?;
        let d = if next {
            d.tomorrow()
                .map_err(|_| Problem::bad_request(format!("`{name}` is out of range")))?
        } else {
            d
        };
        Ok(Some(
            studyflow_runtime::clock::riga_midnight(d).as_microsecond(),
        ))
    };
    let filter = studyflow_store::AuditFilter {
        actor: q.actor.filter(|a| !a.is_empty()),
        action: q.action.filter(|a| !a.is_empty()),
        from: midnight("from", &q.from, false)?,
        until: midnight("until", &q.until, true)?,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let rows = app
        .engine
        .audit_of(id, who, &filter, q.after.unwrap_or(0), limit + 1)
        .await?;
    let next = (rows.len() as i64 > limit).then(|| rows[limit as usize - 1].seq.to_string());
    let items = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| AuditEventView {
            seq: r.seq,
            at: instant(r.event.at),
            actor: r.event.actor,
            action: r.event.action,
            object: r.event.object,
            point: r.event.point,
            detail: serde_json::from_str(&r.event.detail)
                .unwrap_or(serde_json::Value::String(r.event.detail)),
            erased: r.erased_at.is_some(),
        })
        .collect();
    Ok(Page { items, next })
}

/// The largest file a person supplies for a task: a manual extraction of 100,000 clients with
/// twenty columns is about 20 MiB.
pub const SUPPLY_LIMIT: usize = 64 << 20;

pub(crate) fn work_folder(app: &App) -> Result<&std::path::Path> {
    app.work.as_deref().ok_or_else(|| {
        Problem::not_found(
            "this server is not configured with the work folder (studyflow serve --work-dir): tasks take no files through it",
        )
    })
}

/// Takes `key` as the age public key the contact list of study `id` is encrypted to for `who`
/// (MK403 p.32): the engine says whether they may give one
/// ([`studyflow_runtime::Engine::contact_key_holder`], with a recent proof of identity); the
/// key is checked and written beside its place in the work folder's `recipients/`, its giving
/// audited (`contact.key_given`, with its sha256), and only then put in place (replacing the
/// one they gave before). Not audited, not taken.
pub(crate) async fn give_contact_key(
    app: &App,
    who: &Identity,
    id: &str,
    key: &str,
) -> Result<ContactKeyGiven> {
    app.engine.contact_key_holder(id, who).await?;
    let work = app.work.clone().ok_or_else(|| {
        Problem::not_found(
            "this server is not configured with the work folder (studyflow serve --work-dir): it takes no key for a contact list",
        )
    })?;
    let (study, login, text) = (id.to_owned(), who.login().to_owned(), key.to_owned());
    let staged = tokio::task::spawn_blocking(move || {
        studyflow_dataplane::contact::give_key(&work.join("recipients"), &study, &login, &text)
    })
    .await
    .map_err(|_| Problem::internal())?
    .map_err(|e| match e {
        studyflow_dataplane::contact::KeyError::NotAKey => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-request",
            e.to_string(),
        ),
        studyflow_dataplane::contact::KeyError::Login => {
            Problem::new(StatusCode::CONFLICT, "refused", e.to_string())
        }
        studyflow_dataplane::contact::KeyError::Io(..) => {
            tracing::error!(error = %e, "cannot keep a key given for a contact list");
            Problem::internal()
        }
    })?;
    let key_sha256 = staged.sha256.clone();
    if let Err(e) = app
        .engine
        .record_read(
            who,
            "contact.key_given",
            id,
            "p.32",
            serde_json::json!({"key_sha256": key_sha256}),
        )
        .await
    {
        staged.discard();
        return Err(e.into());
    }
    let recipients = tokio::task::spawn_blocking(move || staged.place())
        .await
        .map_err(|_| Problem::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot put a key given for a contact list in place");
            Problem::internal()
        })?;
    // The transfer waiting for a key looks at once; failing that, at its next look.
    if let Err(e) = app
        .engine
        .wake_kind(id, studyflow_plan::StepKind::ContactTransfer)
        .await
    {
        tracing::warn!(error = %e, "the contact list's transfer was not woken");
    }
    Ok(ContactKeyGiven {
        message: format!(
            "the contact list of {id} is encrypted to your key ({recipients} people's keys in all); once written it is a release of the study that only its recipients download (MK403 p.32)"
        ),
        recipients,
        key_sha256,
    })
}

/// The files the engine prepared for task `run` of `step`, in the work folder's outbox.
pub(crate) fn prepared_files(
    work: &std::path::Path,
    run: &studyflow_store::RunRow,
    step: &studyflow_plan::Step,
) -> Vec<studyflow_dataplane::supply::Prepared> {
    let output: Option<serde_json::Value> = run
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok());
    studyflow_dataplane::supply::prepared(&work.join("outbox"), &run.study, step, output.as_ref())
}

/// What the engine prepared for task `id` and what it takes (the API and the task page alike).
pub(crate) async fn task_files_view(app: &App, who: &Identity, id: i64) -> Result<TaskFiles> {
    let (run, loaded, step) = app.engine.task_taking_files(id, who, None).await?;
    let work = work_folder(app)?;
    let files = prepared_files(work, &run, &step);
    let mut prepared = Vec::new();
    for f in files {
        let bytes = tokio::fs::read(&f.path)
            .await
            .map_err(|_| Problem::internal())?;
        prepared.push(FileView {
            name: f.name,
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        });
    }
    let supply = studyflow_dataplane::supply::Supply::of(&step, run.human, run.version).map(|s| {
        SupplyView {
            name: s.file_name().to_owned(),
            media: s.media().to_owned(),
            point: s.point().to_owned(),
            columns: s
                .columns(&loaded.spec, &step)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            supplied: s.path(&work.join("inbox"), &run.study).exists(),
        }
    });
    Ok(TaskFiles { prepared, supply })
}

/// A file prepared for task `id`, as a download, its reading audited (the API and the task
/// page alike). A `HEAD` request (`head`) gets the headers alone and is not audited: nothing
/// of the file is handed over.
pub(crate) async fn prepared_file(
    app: &App,
    who: &Identity,
    id: i64,
    file: &str,
    head: bool,
) -> Result<Response> {
    let (run, _, step) = app
        .engine
        .task_taking_files(id, who, Some(studyflow_runtime::ProvenAct::ReadTaskFiles))
        .await?;
    let work = work_folder(app)?;
    let found = prepared_files(work, &run, &step)
        .into_iter()
        .find(|f| f.name == file)
        .ok_or_else(|| {
            Problem::not_found(format!(
                "task {id} has no prepared file `{}`",
                file.chars().take(80).collect::<String>()
            ))
        })?;
    let bytes = tokio::fs::read(&found.path).await.map_err(|_| {
        Problem::new(
            StatusCode::GONE,
            "gone",
            format!("`{}` of task {id} is not there any more", found.name),
        )
    })?;
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    // A request naming subjects is audited by its size, not its digest, which would give a
    // short list of personal codes away to whoever reads the audit.
    let detail = if step.handles_personal_data() {
        serde_json::json!({"run": id, "file": found.name, "bytes": bytes.len()})
    } else {
        serde_json::json!({"run": id, "file": found.name, "sha256": hash})
    };
    let length = bytes.len();
    let mut r = if head {
        axum::body::Body::empty().into_response()
    } else {
        app.engine
            .record_read(
                who,
                "task.file_read",
                &studyflow_store::run_object(&run.study, &run.step, &run.subject),
                &step.regulation.join(" "),
                detail,
            )
            .await?;
        bytes.into_response()
    };
    let kind = if found.name.ends_with(".json") {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{}\"", found.name))
            .map_err(|_| Problem::internal())?,
    );
    h.insert(
        "x-content-sha256",
        HeaderValue::from_str(&hash).map_err(|_| Problem::internal())?,
    );
    Ok(r)
}

/// A task that takes a file, and where: everything checked before a byte of the file is read.
pub(crate) struct SupplyTarget {
    run: studyflow_store::RunRow,
    loaded: Arc<studyflow_runtime::engine::Loaded>,
    step: studyflow_plan::Step,
    kind: studyflow_dataplane::supply::Supply,
    work: std::path::PathBuf,
}

impl SupplyTarget {
    /// The media type the task's file is sent as.
    pub(crate) fn media(&self) -> &'static str {
        self.kind.media()
    }
}

/// Who, which task, a recent proof, and that it takes a file: nothing of a file is read for
/// someone who may not send it.
pub(crate) async fn supply_target(app: &App, who: &Identity, id: i64) -> Result<SupplyTarget> {
    let (run, loaded, step) = app
        .engine
        .task_taking_files(id, who, Some(studyflow_runtime::ProvenAct::SupplyTaskFile))
        .await?;
    let work = work_folder(app)?.to_path_buf();
    let Some(kind) = studyflow_dataplane::supply::Supply::of(&step, run.human, run.version) else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "refused",
            format!("task {id} ({}) takes no file", run.step),
        ));
    };
    Ok(SupplyTarget {
        run,
        loaded,
        step,
        kind,
        work,
    })
}

/// A few files checked at once: each is held whole in memory while it is.
pub(crate) static SUPPLY_CHECKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A slow sender does not hold a place for long.
pub(crate) const SUPPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

pub(crate) fn supply_timed_out() -> Problem {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "the file did not arrive within 2 minutes",
    )
}

pub(crate) fn supply_too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        format!("a task's file is at most {} MiB", SUPPLY_LIMIT >> 20),
    )
}

/// Checks a task's file whole and, if good and the task still takes it, puts it where the
/// import looks; audited by size and rows; the task's waiting import woken. Refused whole with
/// its row report (`file-refused`, the first 100 problems) and nothing kept.
///
/// All of it by a task of its own holding `checking` (a place among [`SUPPLY_CHECKS`]), which
/// runs to its end even when the client goes away meanwhile (the request's future is then
/// dropped): never a file placed where the import looks without its audit event, and never
/// more checks at once than the places, whoever disconnects.
pub(crate) async fn supply_bytes(
    app: &Arc<App>,
    who: &Identity,
    id: i64,
    target: SupplyTarget,
    body: Bytes,
    checking: tokio::sync::SemaphorePermit<'static>,
) -> Result<Supplied> {
    let (app, who) = (app.clone(), who.clone());
    tokio::spawn(async move {
        let _checking = checking;
        let out = supply_checked(&app, &who, id, target, body).await;
        // Told here too: the client that would read it may have gone.
        if let Err(p) = &out
            && p.status >= 500
        {
            tracing::error!(run = id, detail = %p.detail, "a supplied file was not taken");
        }
        out
    })
    .await
    .map_err(|_| Problem::internal())?
}

/// One placing of a supplied file at a time, from placing to its audit's outcome, and no
/// task completed meanwhile: an upload whose audit is refused puts back the file before it,
/// never over one placed meanwhile (across servers sharing a work folder, `Placed::undo`
/// tells the files apart), and an import begun by a completion never reads a file being
/// replaced (completions through this server wait; [`complete_task`]).
pub(crate) static PLACING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Completes task `id` as `who` once no supplied file is being placed (see [`PLACING`]).
pub(crate) async fn complete_task(
    app: &App,
    id: i64,
    who: &Identity,
    note: Option<&str>,
) -> Result<()> {
    let _placing = PLACING.lock().await;
    app.engine.complete_task(id, who, note).await?;
    Ok(())
}

/// [`supply_bytes`]' work.
async fn supply_checked(
    app: &App,
    who: &Identity,
    id: i64,
    target: SupplyTarget,
    body: Bytes,
) -> Result<Supplied> {
    let SupplyTarget {
        run,
        loaded,
        step,
        kind,
        work,
    } = target;
    let size = body.len();
    let study = run.study.clone();
    let put = tokio::task::spawn_blocking(move || kind.stage(&loaded.spec, &step, &work, &study, &body))
        .await
        .map_err(|_| Problem::internal())?
        .map_err(|e| {
            // An answer to a request that is not in the outbox (answered already, or its
            // files removed by hand) has nothing to be checked against.
            if e.kind() == std::io::ErrorKind::NotFound {
                return Problem::new(
                    StatusCode::CONFLICT,
                    "refused",
                    format!(
                        "task {id} has no request in the outbox to check `{}` against: it was answered already, or its files were removed",
                        kind.file_name()
                    ),
                );
            }
            tracing::error!(error = %e, "cannot put a supplied file in the inbox");
            Problem::internal()
        })?;
    let staged = match put {
        Ok(s) => s,
        Err(rejected) => {
            let listed = rejected.problems.len();
            let (shown, shown_lv) = if listed < rejected.rows {
                (
                    format!("; the first {listed} are listed"),
                    format!("; norādītas pirmās {listed}"),
                )
            } else {
                (String::new(), String::new())
            };
            let (file, rows, point) = (kind.file_name(), rejected.rows, kind.point());
            let mut problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "file-refused",
                format!(
                    "`{file}` was refused whole and nothing of it kept: problems in {rows} row(s){shown}; correct them and send it again (MK403 {point})"
                ),
            )
            .in_latvian(format!(
                "`{file}` ir noraidīts pilnībā, un nekas no tā nav saglabāts: problēmas rindās — {rows}{shown_lv}; izlabojiet tās un nosūtiet failu vēlreiz (MK403 {})",
                studyflow_spec::diagnostic::points_lv(&[point])
            ));
            problem.rows = rejected
                .problems
                .iter()
                .map(|p| serde_json::to_value(p).unwrap_or_default())
                .collect();
            return Err(problem);
        }
    };
    let placing = PLACING.lock().await;
    // The task may have been completed, and its import begun, while the file was checked or
    // the placing waited: then the staged file is discarded, never placed where the import
    // looks.
    app.engine.task_taking_files(id, who, None).await?;
    let placed = tokio::task::spawn_blocking(move || staged.place())
        .await
        .map_err(|_| Problem::internal())?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot put a supplied file in the inbox");
            Problem::internal()
        })?;
    let rows = placed.accepted.rows;
    // Who supplied what: its size and rows. Not its digest: the hash of a short list of
    // personal codes or contacts would give them away to whoever reads the audit. Not
    // recorded, the placing is undone: the file supplied before is back, not lost. Recorded,
    // and the seal after it found the audit tampered with, it is kept, as the audit says.
    let audited = app
        .engine
        .record_read(
            who,
            "task.file_supplied",
            &studyflow_store::run_object(&run.study, &run.step, &run.subject),
            kind.point(),
            serde_json::json!({"run": id, "file": kind.file_name(), "bytes": size, "rows": rows}),
        )
        .await;
    let recorded = matches!(
        audited,
        Ok(())
            | Err(studyflow_runtime::EngineError::Store(
                studyflow_store::StoreError::AuditTampered(_)
            ))
    );
    let settled = tokio::task::spawn_blocking(move || {
        if recorded {
            placed.keep();
            Ok(())
        } else {
            placed.undo()
        }
    })
    .await;
    match settled {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot undo the placing of a supplied file"),
        Err(e) => tracing::error!(error = %e, "cannot settle the placing of a supplied file"),
    }
    drop(placing);
    audited?;
    // Completed before the file came: its import waits for it, and now looks at once. The
    // file is placed and audited either way: a failed wake is the worker's next look, not a
    // refusal (which would have the person send it again, and audit it twice).
    if let Err(e) = app.engine.wake(id).await {
        tracing::warn!(run = id, error = %e, "a supplied file's import was not woken");
    }
    Ok(Supplied {
        name: kind.file_name().to_owned(),
        bytes: size,
        rows,
    })
}

/// The open tasks of `who` with their guides, then the runs waiting for a file they may send
/// (the API's list and the tasks page alike).
pub(crate) async fn tasks_view(app: &App, who: &Identity) -> Result<Vec<TaskView>> {
    let mut out = Vec::new();
    let open = app.engine.tasks(Some(who)).await?;
    let awaiting = app.engine.awaiting_files(who).await?;
    let count = open.len();
    for (i, t) in open.into_iter().chain(awaiting).enumerate() {
        let guide = app.engine.task_guide(&t).await?;
        out.push(TaskView {
            id: t.id,
            study: t.study,
            step: t.step,
            subject: t.subject,
            actor: t.actor.replace('_', " "),
            due: t.due_at.map(last_day),
            title: guide.title,
            title_lv: guide.title_lv,
            points: guide.points.iter().map(|p| (*p).to_owned()).collect(),
            steps: guide.steps,
            steps_lv: guide.steps_lv,
            awaiting_file: i >= count,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    /// A release file is sent in chunks as it was checked; one changed after its check (same
    /// length, another byte) ends the stream with an error instead of arriving whole.
    #[tokio::test]
    async fn a_release_file_is_streamed_and_a_change_meanwhile_breaks_it_off() {
        let dir = std::env::temp_dir().join(format!("sf-stream-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("subjects.csv");
        let body: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        std::fs::write(&path, &body).unwrap();
        let mut file = tokio::fs::File::open(&path).await.unwrap();
        let (hash, length) = digest_of(&mut file).await.unwrap();
        assert_eq!(length, body.len() as u64);
        let told = Told::default();
        let open = || async { tokio::fs::File::open(&path).await.unwrap() };
        let chunks: Vec<std::io::Result<Bytes>> =
            checked_chunks(open().await, hash.clone(), length, told.clone())
                .collect()
                .await;
        assert!(chunks.len() > 1, "sent in chunks");
        let sent: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        assert_eq!(sent, body);
        assert_eq!(told.take(), ["complete"]);

        // Dropped after three chunks (the client went away): broken, with what was sent.
        let mut stream = Box::pin(checked_chunks(
            open().await,
            hash.clone(),
            length,
            told.clone(),
        ));
        let mut got = 0;
        for _ in 0..3 {
            got += stream.next().await.unwrap().unwrap().len();
        }
        drop(stream);
        assert_eq!(told.take(), [format!("broken {got} of {length}")]);

        // An audit that cannot be written keeps the last chunk back.
        let failing = Told {
            fail: true,
            ..Told::default()
        };
        let chunks: Vec<std::io::Result<Bytes>> =
            checked_chunks(open().await, hash.clone(), length, failing.clone())
                .collect()
                .await;
        assert!(chunks.last().unwrap().is_err());
        let sent: usize = chunks.iter().flatten().map(Bytes::len).sum();
        assert!((sent as u64) < length, "{sent} of {length}");
        assert_eq!(failing.take(), [format!("broken {sent} of {length}")]);

        // The client goes while the completion is being recorded: it is recorded whole, and
        // nothing says broken.
        let (entered, gate) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Semaphore::new(0)),
        );
        let slow = Told {
            gated: Some((entered.clone(), gate.clone())),
            ..Told::default()
        };
        let mut stream = Box::pin(checked_chunks(
            open().await,
            hash.clone(),
            length,
            slow.clone(),
        ));
        // Everything but the last chunk (what the last read brings), until the record begins.
        let last = length - (length - 1) / CHUNK as u64 * CHUNK as u64;
        let mut got = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = entered.notified() => break,
                chunk = stream.next() => match chunk {
                    Some(chunk) => got += chunk.unwrap().len() as u64,
                    None => panic!("ended before the record"),
                },
            }
        }
        assert_eq!(got, length - last, "the last chunk waits for the record");
        drop(stream);
        assert!(slow.take().is_empty(), "nothing said broken");
        gate.add_permits(1);
        for _ in 0..10_000 {
            if !slow.said.lock().unwrap().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(slow.take(), ["complete"]);

        let stream = checked_chunks(open().await, hash, length, told.clone());
        let mut changed = body.clone();
        changed[0] = b'9';
        std::fs::write(&path, &changed).unwrap();
        let chunks: Vec<std::io::Result<Bytes>> = stream.collect().await;
        assert!(chunks.last().unwrap().is_err(), "the transfer breaks off");
        // Short of the length the response announced: never a complete transfer, whatever
        // stops reading at that length.
        let sent: usize = chunks.iter().flatten().map(Bytes::len).sum();
        assert!((sent as u64) < length, "{sent} of {length}");
        assert_eq!(told.take(), [format!("broken {sent} of {length}")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A [`TransferEnd`] that keeps what it was told; `fail`s to record completion if asked,
    /// or, `gated`, says it began (`entered`) and records it only once the gate opens.
    #[derive(Clone, Default)]
    struct Told {
        said: Arc<std::sync::Mutex<Vec<String>>>,
        fail: bool,
        gated: Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Semaphore>)>,
    }

    impl Told {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.said.lock().unwrap())
        }
    }

    impl TransferEnd for Told {
        fn complete(&mut self) -> futures_util::future::BoxFuture<'static, std::io::Result<()>> {
            let (said, fail, gated) = (self.said.clone(), self.fail, self.gated.clone());
            Box::pin(async move {
                if let Some((entered, gate)) = gated {
                    entered.notify_one();
                    let _ = gate.acquire().await;
                }
                if fail {
                    return Err(std::io::Error::other("the audit is not writable"));
                }
                said.lock().unwrap().push("complete".into());
                Ok(())
            })
        }

        fn broken(&mut self, sent: u64, length: u64) {
            self.said
                .lock()
                .unwrap()
                .push(format!("broken {sent} of {length}"));
        }
    }
}
