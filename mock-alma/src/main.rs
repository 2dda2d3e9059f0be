//! `mock-alma`: the mock as a standalone server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use mock_alma::{AlmaSection, ApiKey, Cidr, Config, MockAlma, Store};

/// A faithful, stateful mock of Ex Libris Alma.
///
/// Endpoints (under the printed base URL):
///   /almaws/v1/bibs?other_system_id=…|mms_id=a,b    GET: match on 035, or up to 100 ids
///   /almaws/v1/bibs                                  POST: create a bib
///   /almaws/v1/bibs/{mms_id}                         GET, PUT, DELETE (override=true with inventory)
///   /almaws/v1/bibs/{mms_id}/representations[/{id}]  GET (limit, offset), POST, PUT, DELETE
///     XML by default, JSON with Accept: application/json or format=json;
///     key as "Authorization: apikey KEY" or ?apikey=KEY; X-Exl-Api-Remaining on every response
///   /view/oai/<INST>/request                         OAI-PMH: marc21, oai_dc, oai_qdc; set = publishing set
///   /__admin/bibs[/{mms_id}]                         GET state; DELETE a bib
///   /__admin/bibs/{mms_id}/edit                      POST [{"op":"add_field"|"replace_field"|"delete_field"|
///                                                    "set_subfield"|"add_dc"|"replace_dc"|"delete_dc", …}]
///   /__admin/bibs/{mms_id}/suppress                  POST {"suppressed": true|false}
///   /__admin/publish                                 POST {"full": false}: run General Publishing now
///   /__admin/journal, /__admin/faults, /__admin/reset, /__admin/clock   as in mock-rosetta
#[derive(Debug, Parser)]
#[command(name = "mock-alma", version, verbatim_doc_comment)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// The institution code (OAI path, repositoryIdentifier alma.<INST>, MMS ID suffix).
    #[arg(long)]
    institution: Option<String>,
    /// An accepted API key; KEY:ro for a read-only key. Repeatable. Without any, "sandbox-key".
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// The publishing profile's set.
    #[arg(long)]
    publishing_set: Option<String>,
    /// Records per OAI-PMH page (at most 900).
    #[arg(long, default_value_t = 100)]
    page_size: usize,
    /// Requests the admin journal holds; past it the oldest are dropped and counted
    /// (`GET /__admin/journal/summary`).
    #[arg(long, default_value_t = mockkit::Journal::DEFAULT_CAP)]
    journal_cap: usize,
    /// REST requests per second for the institution (0: unlimited). Never applies to OAI-PMH.
    #[arg(long, default_value_t = 25)]
    rate_limit: u32,
    /// REST requests per day for the institution (Alma's plans: 1,000 × named users), counted
    /// down in X-Exl-Api-Remaining; DAILY_THRESHOLD once spent.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    daily_quota: u64,
    /// Creating a representation needs the bib in a collection (Alma answers 402260 otherwise;
    /// a site setting).
    #[arg(long)]
    require_collection: bool,
    /// A library of /conf/libraries, CODE or CODE:NAME (repeatable; MAIN is always there). With
    /// any, a representation must name a listed library.
    #[arg(long = "library")]
    libraries: Vec<String>,
    /// Link every Nth generated bib to a Network Zone record (counting from the Nth).
    #[arg(long)]
    nz_linked_every: Option<usize>,
    /// Address range allowed to harvest OAI-PMH (repeatable; default loopback).
    #[arg(long = "oai-allow")]
    oai_allow: Vec<String>,
    /// A state or scenario file (TOML; its [alma] section).
    #[arg(long, conflicts_with = "generate")]
    state: Option<PathBuf>,
    /// A probe capture's directory (`mdsync probe --out DIR`): serve its bibs and
    /// representations, as that site's Alma (its institution, publishing set and page size).
    /// With --state or --generate: added to theirs, in this mock's own configuration.
    #[arg(long, value_name = "DIR")]
    seed_from: Option<PathBuf>,
    /// Generate N bibs, each with a Rosetta 035 and a remote representation.
    #[arg(long)]
    generate: Option<usize>,
    /// Seed for --generate.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rosetta's delivery base for delivery links.
    #[arg(long, default_value = "https://rosetta.example.edu")]
    rosetta_delivery_base: String,
    /// Publish every SECONDS instead of on change (0: on change).
    #[arg(long, default_value_t = 0)]
    publish_interval: u64,
    /// Publish a suppressed bib as it was, not as deleted.
    #[arg(long)]
    keep_suppressed: bool,
    /// How MARC becomes DC when publishing: the crosswalk's inverse, or `isbd` (headings with
    /// their full stop and ` -- ` subdivisions, notes in another order), since Alma's own
    /// mapping is not public.
    #[arg(long, value_enum, default_value = "crosswalk")]
    publishing_variant: mock_alma::PublishingVariant,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let section = match &args.state {
        Some(p) => AlmaSection::load(p)?,
        None => AlmaSection::default(),
    };
    let mut config = Config::default();
    if let Some(i) = args.institution.or(section.institution.clone()) {
        config.institution = i;
    }
    if let Some(s) = args.publishing_set.or(section.publishing_set.clone()) {
        config.publishing_set = s;
    }
    if args.page_size == 0 || args.page_size > 900 {
        bail!("--page-size must be between 1 and 900");
    }
    config.page_size = args.page_size;
    config.journal_cap = args.journal_cap;
    config.api_keys = args.api_keys.iter().map(|k| ApiKey::parse(k)).collect();
    config.rate_limit = args.rate_limit;
    config.daily_quota = args.daily_quota;
    config.require_collection = args.require_collection;
    for l in &args.libraries {
        config.add_library(l);
    }
    if !args.oai_allow.is_empty() {
        config.oai_allow = args
            .oai_allow
            .iter()
            .map(|c| Cidr::parse(c))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
    }
    config.rosetta_delivery_base = args.rosetta_delivery_base.clone();
    config.publish_interval =
        (args.publish_interval > 0).then(|| Duration::from_secs(args.publish_interval));
    config.suppressed_as_deleted = !args.keep_suppressed;
    config.publishing_variant = args.publishing_variant;
    let capture = args.seed_from.as_deref().map(read_capture).transpose()?;
    if let (Some(c), None, None) = (&capture, &args.generate, &args.state) {
        config.adopt(c);
    }
    let mut store = match args.generate {
        Some(n) => Store::generate(
            n,
            args.seed,
            &config.institution,
            &config.rosetta_delivery_base,
            now,
        ),
        None => Store::from_section(&section, &config.institution, now)
            .context("loading the state file")?,
    };
    if let Some(c) = &capture {
        let bibs = formats::probe::seed::alma_bibs(c).context("--seed-from")?;
        store.add_captured(&bibs, now);
    }
    // --generate links no bib to the Network Zone unless asked.
    if let Some(every) = args.nz_linked_every {
        store.link_every(every);
    }
    let alma = MockAlma::start_on(args.listen, config, store)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let stop = mockkit::StopSignal::install().context("catching SIGINT and SIGTERM")?;
    println!("listening on {}", alma.base_url());
    eprintln!("REST: {}  OAI-PMH: {}", alma.api_url(), alma.oai_url());
    // The keys it accepts (stdout's first line stays `listening on …`).
    let keys: Vec<String> = if alma.config().api_keys.is_empty() {
        vec![format!("{} (read-write)", mock_alma::Config::SANDBOX_KEY)]
    } else {
        alma.config()
            .api_keys
            .iter()
            .map(|k| {
                format!(
                    "{} ({})",
                    k.key,
                    if k.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    }
                )
            })
            .collect()
    };
    println!("API key(s): {}", keys.join(", "));
    stop.wait().await;
    alma.shutdown().await;
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
