//! `mock-rosetta`: the mock as a standalone server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use formats::oai::DeletedRecord;
use mock_rosetta::{Config, MockRosetta, RosettaSection, Store};

/// A faithful, stateful mock of Ex Libris Rosetta.
///
/// Endpoints (all under the printed base URL):
///   /oaiprovider/request              OAI-PMH 2.0 provider (GET, POST; public, as Rosetta's is)
///   /dpsws/repository/IEWebServices   SOAP 1.1 getMD, updateMD, getIE (Basic auth); ?wsdl
///   /__admin/ies[/{pid}]              GET list/one; PUT {"dc","sets","deleted","locked","in_permanent"}; DELETE
///   /__admin/ies/{pid}/lock|unlock    POST: lock or unlock an IE (LockedIeException)
///   /__admin/journal                  GET: [{method,path,query,status}] since start or reset
///   /__admin/faults                   POST a rule, GET the rules, DELETE them all (see README)
///   /__admin/reset                    POST: clear journal, faults and the update log
///   /__admin/update-job/run           POST: run the Metadata Update Job now; JSON summary
///   /__admin/updates                  GET: every update seen (SOAP and job) with its outcome
///   /__admin/clock                    POST {"advance_seconds": N}: let time pass
#[derive(Debug, Parser)]
#[command(name = "mock-rosetta", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The repositoryIdentifier in OAI identifiers.
    #[arg(long)]
    repository_identifier: Option<String>,
    /// The institution code (SOAP user suffix, the <INST>-collections set).
    #[arg(long)]
    institution: Option<String>,
    /// The publishing set's setSpec.
    #[arg(long)]
    set: Option<String>,
    /// Records per ListRecords / ListIdentifiers page.
    #[arg(long, default_value_t = 100)]
    page_size: usize,
    /// Requests the admin journal holds; past it the oldest are dropped and counted
    /// (`GET /__admin/journal/summary`).
    #[arg(long, default_value_t = mockkit::Journal::DEFAULT_CAP)]
    journal_cap: usize,
    /// Generate N live IEs in the publishing set (deterministic for --seed).
    #[arg(long, conflicts_with = "state")]
    generate: Option<usize>,
    /// Seed for --generate.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A state or scenario file (TOML; its [rosetta] section).
    #[arg(long)]
    state: Option<PathBuf>,
    /// A probe capture's directory (`mdsync probe --out DIR`): serve its IEs, as that site's
    /// repository (its repository identifier, set and page size). With --state or
    /// --generate: added to theirs, in this mock's own configuration.
    #[arg(long, value_name = "DIR")]
    seed_from: Option<PathBuf>,
    /// The Metadata Update Job's directory (must exist).
    #[arg(long)]
    update_dir: Option<PathBuf>,
    /// Also run the update job every SECONDS.
    #[arg(long)]
    update_job_interval: Option<u64>,
    /// SOAP user (authenticates as <user>-institutionCode-<INST>).
    #[arg(long, default_value = "mdsync")]
    user: String,
    /// SOAP password.
    #[arg(long, default_value = "mdsync", env = "MOCK_ROSETTA_PASSWORD")]
    password: String,
    /// Identify's deletedRecord policy: persistent (deleted IEs listed as deleted) or no.
    #[arg(long, default_value = "persistent")]
    deleted_record: String,
    /// Compare records in order ("ignore differences in field sequence" off).
    #[arg(long)]
    strict_field_order: bool,
    /// (Assumed behaviour, switchable:) an updateMD without `commit` keeps the change pending
    /// under the caller's lock instead of committing it.
    #[arg(long)]
    omitted_commit_pending: bool,
    /// (Assumed, switchable:) the metadataPrefix of qualified DC.
    #[arg(long, default_value = "oai_qdc")]
    qdc_prefix: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let section = match &args.state {
        Some(p) => RosettaSection::load(p)?,
        None => RosettaSection::default(),
    };
    let mut config = Config::default();
    if let Some(r) = args
        .repository_identifier
        .or(section.repository_identifier.clone())
    {
        config.repository_identifier = r;
    }
    if let Some(i) = args.institution.or(section.institution.clone()) {
        config.institution = i;
    }
    if let Some(s) = args.set.or(section.set.clone()) {
        config.set = s;
    }
    if args.page_size == 0 {
        bail!("--page-size must be at least 1");
    }
    config.page_size = args.page_size;
    config.journal_cap = args.journal_cap;
    config.user = args.user;
    config.password = args.password;
    config.deleted_record = match DeletedRecord::parse(&args.deleted_record) {
        Some(DeletedRecord::Transient) | None => bail!("--deleted-record must be persistent or no"),
        Some(d) => d,
    };
    config.ignore_field_sequence = !args.strict_field_order;
    config.omitted_commit_pending = args.omitted_commit_pending;
    config.qdc_prefix = args.qdc_prefix.clone();
    if let Some(dir) = &args.update_dir {
        if !dir.is_dir() {
            bail!(
                "--update-dir {}: not a directory (Rosetta needs it created beforehand)",
                dir.display()
            );
        }
        config.update_dir = Some(dir.clone());
    }
    config.update_job_interval = args.update_job_interval.map(Duration::from_secs);
    let capture = args.seed_from.as_deref().map(read_capture).transpose()?;
    if let (Some(c), None, None) = (&capture, &args.generate, &args.state) {
        config.adopt(c);
    }
    let mut store = match args.generate {
        Some(n) => Store::generate(n, args.seed, &config.set, now),
        None => Store::from_section(&section, &config.set, now)
            .with_context(|| "loading the state file")?,
    };
    if let Some(c) = &capture {
        let ies = formats::probe::seed::rosetta_ies(c).context("--seed-from")?;
        store.add_captured(&ies, &config.set, now);
    }
    let rosetta = MockRosetta::start_on(args.listen, config, store)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let stop = mockkit::StopSignal::install().context("catching SIGINT and SIGTERM")?;
    println!("listening on {}", rosetta.base_url());
    eprintln!(
        "OAI-PMH: {}  SOAP: {}",
        rosetta.oai_url(),
        rosetta.soap_url()
    );
    // The credentials it accepts, for whoever points a client at it (a mock's secrets are not
    // secret). stdout's first line stays `listening on …`.
    println!(
        "SOAP user {} (Basic auth), password {}",
        rosetta.config().soap_user(),
        rosetta.config().password
    );
    stop.wait().await;
    rosetta.shutdown().await;
    Ok(())
}

/// A probe capture from its directory.
fn read_capture(dir: &std::path::Path) -> anyhow::Result<formats::probe::Capture> {
    let index_path = dir.join(formats::probe::INDEX_FILE);
    let index = std::fs::read_to_string(&index_path)
        .with_context(|| format!("--seed-from {}", index_path.display()))?;
    formats::probe::Capture::read(&index, |name| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| e.to_string())
    })
    .with_context(|| format!("--seed-from {}", dir.display()))
}
