//! `mdsync probe` (capture a site, read-only) and `mdsync probe diff` (replay a capture and
//! compare the answers' shapes).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use engine::config::{Config, secret};
use engine::probe::diff::{Compared, KnownDifferences};
use engine::probe::{
    Captured, Credentials, Endpoints, ProbeError, ProbeObserver, ProbeOptions, Prober,
};
use engine::retry::RetryPolicy;
use formats::probe::redact::{Pseudonyms, Redactor};
use formats::probe::{Exchange, Index, Redaction, System};

use crate::cli::{DiffAgainst, DiffReport, ProbeArgs, ProbeDiffArgs};

/// The file of known differences `probe diff` reads from the capture's directory.
pub(crate) const KNOWN_FILE: &str = "known-differences.toml";

pub(crate) async fn probe(config_path: &Path, args: ProbeArgs) -> anyhow::Result<ExitCode> {
    if let Some(crate::cli::ProbeAction::Diff(d)) = args.action {
        return diff(config_path, d).await;
    }
    let Some(out) = args.out else {
        return Err(crate::Usage(
            "probe: --out DIR names where the capture goes (or: probe diff DIR)".into(),
        )
        .into());
    };
    if out.join(formats::probe::INDEX_FILE).exists() {
        return Err(crate::Usage(format!(
            "{}: holds a capture already; choose an empty directory",
            out.display()
        ))
        .into());
    }
    let cfg = crate::load_config(config_path)?;
    let credentials = credentials(&cfg)?;
    let options = ProbeOptions { ies: args.ies };
    let plan = engine::probe::plan(&cfg, &options);
    let planned: usize = plan.iter().map(|p| p.count).sum();
    let alma_calls: usize = plan
        .iter()
        .filter(|p| p.system == System::AlmaRest)
        .map(|p| p.count)
        .sum();
    println!("mdsync probe: {planned} read-only calls, in this order:");
    for p in &plan {
        println!("  {:<13} {:>3}  {}", p.system.as_str(), p.count, p.what);
    }
    println!(
        "  of them {alma_calls} to Alma's REST API, paced at {} a second; their share of \
         today's quota is printed after Alma's first answer (X-Exl-Api-Remaining)",
        cfg.alma.max_requests_per_second
    );
    let prober = prober(
        &cfg.general,
        cfg.alma.max_requests_per_second,
        Endpoints::from_config(&cfg),
        credentials.clone(),
    )?;
    let mut printer = Printer {
        planned,
        alma_calls,
        told_quota: false,
    };
    let captured = engine::probe::capture(&prober, &cfg, &options, &mut printer).await;
    let mut redactor = Redactor {
        secrets: engine::probe::secrets(&credentials),
        hosts: if args.redact_hosts {
            engine::probe::host_placeholders(prober.endpoints())
        } else {
            Vec::new()
        },
        values: args.redact_values.then(|| Pseudonyms::new(random_key())),
    };
    let index = Index {
        format: 1,
        made_by: format!("mdsync {}", env!("CARGO_PKG_VERSION")),
        made_at: crate::html::now_text(),
        redaction: Redaction {
            secrets: true,
            hosts: args.redact_hosts,
            values: args.redact_values,
        },
        planned_calls: planned,
        made_calls: 0,
        site: engine::probe::site(&cfg),
        exchanges: Vec::new(),
    };
    let index = engine::probe::write(&out, &captured, &mut redactor, index)?;
    summary(&captured, &index, prober.retries(), &out);
    Ok(if captured.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn summary(captured: &Captured, index: &Index, retries: u64, out: &Path) {
    println!(
        "made {} of the {} calls announced ({retries} asked again after a 429, a 503 or a broken connection); {} got no answer",
        index.made_calls,
        index.planned_calls,
        captured.failures.len()
    );
    println!(
        "wrote {} exchanges and {} to {} (secrets redacted{}{})",
        index.exchanges.len(),
        formats::probe::INDEX_FILE,
        out.display(),
        if index.redaction.hosts {
            ", host names replaced"
        } else {
            ""
        },
        if index.redaction.values {
            ", values pseudonymised"
        } else {
            ""
        }
    );
}

/// The secrets, from the environment variables the configuration names.
fn credentials(cfg: &Config) -> anyhow::Result<Credentials> {
    let key = secret(&cfg.alma.api_key_env)
        .map_err(|p| crate::Usage(format!("{p}: the Alma API key")))?;
    let password = match &cfg.rosetta.soap_url {
        Some(_) => Some(
            secret(&cfg.rosetta.password_env)
                .map_err(|p| crate::Usage(format!("{p}: the Rosetta web services password")))?,
        ),
        None => None,
    };
    Ok(Credentials {
        alma_api_key: key,
        soap_user: format!(
            "{}-institutionCode-{}",
            cfg.rosetta.user.clone().unwrap_or_default(),
            cfg.rosetta.institution.clone().unwrap_or_default()
        ),
        rosetta_password: password,
    })
}

/// A prober over `[general]`'s network settings, pacing Alma at `alma_rps`.
fn prober(
    general: &engine::config::General,
    alma_rps: u32,
    endpoints: Endpoints,
    credentials: Credentials,
) -> anyhow::Result<Prober> {
    let network = engine::harvest::Network::from_config(general).map_err(crate::Usage)?;
    let http = engine::harvest::http_client_with(&network).map_err(crate::Usage)?;
    Ok(Prober::new(
        http,
        endpoints,
        credentials,
        alma_rps,
        RetryPolicy::default(),
        general.max_page_bytes,
    ))
}

/// A pseudonym key no one can guess from the capture.
fn random_key() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

struct Printer {
    planned: usize,
    alma_calls: usize,
    told_quota: bool,
}

impl ProbeObserver for Printer {
    fn answered(&mut self, n: usize, e: &Exchange) {
        println!(
            "[{n:>3}/{}] {:<12} {:<34} {} {}",
            self.planned,
            e.system.as_str(),
            e.kind.as_str(),
            e.status,
            e.header("content-type").unwrap_or("-")
        );
        if !self.told_quota
            && e.system == System::AlmaRest
            && let Some(left) = e
                .header("x-exl-api-remaining")
                .and_then(|v| v.trim().parse::<u64>().ok())
        {
            self.told_quota = true;
            let share = if left == 0 {
                "more than all".to_owned()
            } else {
                format!("{:.3}%", self.alma_calls as f64 * 100.0 / left as f64)
            };
            println!(
                "          Alma: {left} API calls left today; this probe's {} are {share} of them",
                self.alma_calls
            );
        }
    }

    fn failed(&mut self, e: &ProbeError) {
        eprintln!("mdsync probe: no answer: {e}");
    }

    fn note(&mut self, message: &str) {
        println!("          note: {message}");
    }
}

async fn diff(config_path: &Path, d: ProbeDiffArgs) -> anyhow::Result<ExitCode> {
    let compared = match compare(config_path, &d).await {
        Ok(c) => c,
        Err(e) => {
            // JSON stays one document when the comparison cannot be made; the error also goes
            // to stderr and sets the exit code.
            if d.report == DiffReport::Json {
                println!(
                    "{}",
                    serde_json::json!({
                        "capture": d.dir.display().to_string(),
                        "error": format!("{e:#}"),
                    })
                );
            }
            return Err(e);
        }
    };
    let differs = compared.iter().any(|c| !c.same());
    match d.report {
        DiffReport::Text => print_diff(&compared),
        DiffReport::Json => println!("{}", diff_json(&d, &compared)),
    }
    Ok(if differs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every request of the capture made again, compared.
async fn compare(config_path: &Path, d: &ProbeDiffArgs) -> anyhow::Result<Vec<Compared>> {
    let capture = engine::probe::read(&d.dir).map_err(crate::Usage)?;
    let known = known_differences(&d.dir, d.known.as_deref())?;
    if matches!(d.against, DiffAgainst::Config) && capture.index.redaction.values {
        return Err(crate::Usage(format!(
            "{}: its values are pseudonyms (--redact-values), which no real system holds: replay it against the mocks seeded from it (the default), or capture again without --redact-values",
            d.dir.display()
        ))
        .into());
    }
    if d.report == DiffReport::Text {
        println!(
            "replaying the {} requests of {} ({}, {}) against {}",
            capture.exchanges.len(),
            d.dir.display(),
            capture.index.made_by,
            capture.index.made_at,
            match d.against {
                DiffAgainst::Mocks => "both mocks, seeded from it",
                DiffAgainst::Config => "the endpoints of the configuration",
            }
        );
    }
    let compared = match d.against {
        DiffAgainst::Mocks => {
            let mocks =
                scenarios::Mocks::start(scenarios::MocksConfig::from_capture(capture.clone()))
                    .await
                    .map_err(anyhow::Error::msg)
                    .context("starting the mocks seeded from the capture")?;
            let endpoints = Endpoints {
                rosetta_oai: mocks.rosetta.oai_url(),
                rosetta_soap: Some(mocks.rosetta.soap_url()),
                alma_rest: mocks.alma.api_url(),
                alma_oai: Some(mocks.alma.oai_url()),
            };
            let credentials = Credentials {
                alma_api_key: mocks.alma_api_key(),
                soap_user: mocks.rosetta.config().soap_user(),
                rosetta_password: Some(mocks.rosetta.config().password.clone()),
            };
            // The mocks do not govern a replay: as fast as they answer.
            let p = prober(
                &engine::config::General::default(),
                1000,
                endpoints,
                credentials,
            )?;
            let out = engine::probe::diff::replay(&p, &capture, &known).await;
            mocks.shutdown().await;
            out
        }
        DiffAgainst::Config => {
            let cfg = crate::load_config(config_path)?;
            let p = prober(
                &cfg.general,
                cfg.alma.max_requests_per_second,
                Endpoints::from_config(&cfg),
                credentials(&cfg)?,
            )?;
            engine::probe::diff::replay(&p, &capture, &known).await
        }
    };
    Ok(compared)
}

/// The known differences: `--known FILE`, else the capture's own `known-differences.toml`.
fn known_differences(dir: &Path, file: Option<&Path>) -> anyhow::Result<KnownDifferences> {
    let path: PathBuf = match file {
        Some(f) => f.to_owned(),
        None => {
            let own = dir.join(KNOWN_FILE);
            if !own.exists() {
                return Ok(KnownDifferences::default());
            }
            own
        }
    };
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(KnownDifferences::parse(&text, &path.display().to_string()).map_err(crate::Usage)?)
}

/// The comparison as one JSON document.
fn diff_json(d: &ProbeDiffArgs, compared: &[Compared]) -> serde_json::Value {
    let difference = |x: &formats::probe::shape::Difference| serde_json::json!({"what": x.what, "at": x.at, "capture": x.capture, "replay": x.replay});
    let requests: Vec<serde_json::Value> = compared
        .iter()
        .map(|c| {
            serde_json::json!({
                "file": c.file,
                "system": c.system.as_str(),
                "kind": c.kind.as_str(),
                "request": c.request,
                "same": c.same(),
                "error": c.error,
                "differences": c.differences.iter().map(difference).collect::<Vec<_>>(),
                "accepted": c.accepted.iter().map(|(x, why)| {
                    let mut v = difference(x);
                    v["reason"] = serde_json::Value::from(why.as_str());
                    v
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "capture": d.dir.display().to_string(),
        "against": match d.against {
            DiffAgainst::Mocks => "mocks",
            DiffAgainst::Config => "config",
        },
        "total": compared.len(),
        "same": compared.iter().filter(|c| c.same()).count(),
        "requests": requests,
    })
}

/// One table per request kind.
fn print_diff(compared: &[Compared]) {
    let mut kinds: Vec<(System, formats::probe::Kind)> = Vec::new();
    for c in compared {
        if !kinds.contains(&(c.system, c.kind)) {
            kinds.push((c.system, c.kind));
        }
    }
    for system in System::ALL {
        let of_system: Vec<_> = kinds.iter().filter(|(s, _)| *s == system).collect();
        if of_system.is_empty() {
            continue;
        }
        println!("{}", system.title());
        for (_, kind) in of_system {
            let these: Vec<&Compared> = compared
                .iter()
                .filter(|c| c.system == system && c.kind == *kind)
                .collect();
            let bad = these.iter().filter(|c| !c.same()).count();
            let accepted: usize = these.iter().map(|c| c.accepted.len()).sum();
            let verdict = if bad == 0 { "same" } else { "differs" };
            let note = if accepted > 0 {
                format!(
                    " ({accepted} known difference{} accepted)",
                    if accepted == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            println!("  {:<34} {verdict}{note}", kind.as_str());
            for c in these.iter().filter(|c| !c.same()) {
                if let Some(e) = &c.error {
                    println!("      {}: no answer: {e}", c.file);
                }
                for d in &c.differences {
                    println!("      {}: {d}", c.file);
                }
            }
        }
    }
    let total = compared.len();
    let same = compared.iter().filter(|c| c.same()).count();
    println!("{same} of {total} requests answered in the same shape");
}
