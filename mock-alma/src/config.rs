//! The mock's configuration (what the command-line options set).

use std::net::IpAddr;
use std::time::Duration;

/// An API key and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub read_only: bool,
}

impl ApiKey {
    /// `KEY` or `KEY:ro`.
    pub fn parse(s: &str) -> ApiKey {
        match s.strip_suffix(":ro") {
            Some(k) => ApiKey {
                key: k.to_owned(),
                read_only: true,
            },
            None => ApiKey {
                key: s.to_owned(),
                read_only: false,
            },
        }
    }
}

/// An address range for `--oai-allow` (`127.0.0.0/8`, `::1/128`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(self.prefix))
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(self.prefix))
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

/// How mock-alma behaves. `Config::default()` is the command line's defaults.
#[derive(Debug, Clone)]
pub struct Config {
    pub institution: String,
    /// Accepted keys; with none configured, the key `sandbox-key` is accepted (read-write).
    pub api_keys: Vec<ApiKey>,
    pub publishing_set: String,
    pub page_size: usize,
    /// Requests the journal holds before it drops the oldest (counted, see `/__admin/journal`).
    pub journal_cap: usize,
    /// REST requests per second for the institution (0: unlimited).
    pub rate_limit: u32,
    /// REST requests per day (0: unlimited).
    pub daily_quota: u64,
    pub oai_allow: Vec<Cidr>,
    pub rosetta_delivery_base: String,
    /// Publish on this interval instead of on change.
    pub publish_interval: Option<Duration>,
    /// A suppressed bib is published as deleted (Alma's default).
    pub suppressed_as_deleted: bool,
    pub token_ttl: Duration,
    /// How MARC becomes DC when publishing (Alma's own mapping is not public).
    pub publishing_variant: PublishingVariant,
    /// Creating a representation needs the bib in a collection (Alma's 402260): a site setting.
    pub require_collection: bool,
    /// The libraries (code, name) of `/conf/libraries`; the first is `MAIN`.
    pub libraries: Vec<(String, String)>,
    /// Libraries were named (`--library`): a representation must name one of them.
    pub libraries_enforced: bool,
}

/// How publishing renders MARC as DC. Alma's own MARC → DC is not public, so an engine must not
/// rely on it being the crosswalk's inverse: `isbd` publishes it otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PublishingVariant {
    /// The crosswalk's MARC → DC (`formats::crosswalk::marc_to_dc`), the import's inverse.
    #[default]
    Crosswalk,
    /// (Assumed, from the punctuation catalogued headings carry:) subjects with their ISBD
    /// full stop and ` -- ` between subdivisions, and the notes (500/520) in the reverse order.
    Isbd,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            institution: "01EXAMPLE_INST".to_owned(),
            api_keys: Vec::new(),
            publishing_set: "rosetta_sync".to_owned(),
            page_size: 100,
            journal_cap: mockkit::Journal::DEFAULT_CAP,
            rate_limit: 25,
            // A realistic plan's figure (1,000 × named users); never "unlimited".
            daily_quota: 100_000,
            oai_allow: vec![
                Cidr {
                    addr: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Cidr {
                    addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    prefix: 128,
                },
            ],
            rosetta_delivery_base: "https://rosetta.example.edu".to_owned(),
            publish_interval: None,
            suppressed_as_deleted: true,
            token_ttl: Duration::from_secs(3600),
            publishing_variant: PublishingVariant::Crosswalk,
            require_collection: false,
            libraries: vec![("MAIN".to_owned(), "Main Library".to_owned())],
            libraries_enforced: false,
        }
    }
}

impl Config {
    pub fn repository_identifier(&self) -> String {
        format!("alma.{}", self.institution)
    }

    /// The key accepted when none is configured.
    pub const SANDBOX_KEY: &'static str = "sandbox-key";

    /// Adds a library (`CODE` or `CODE:NAME`) and enforces the list from then on.
    pub fn add_library(&mut self, spec: &str) {
        let (code, name) = spec.split_once(':').unwrap_or((spec, spec));
        let (code, name) = (code.trim().to_owned(), name.trim().to_owned());
        self.libraries.retain(|(c, _)| *c != code);
        self.libraries.push((code, name));
        self.libraries_enforced = true;
    }

    /// The `desc` Alma gives a coded representation value (assumed names where no source has
    /// them: see README).
    pub fn describe(&self, field: &str, value: &str) -> Option<String> {
        let known = match (field, value) {
            ("library", code) => {
                return self
                    .libraries
                    .iter()
                    .find(|(c, _)| c == code)
                    .map(|(_, n)| n.clone());
            }
            // The NLNZ sample: PRESERVATION_MASTER is "Master", active true is "Active".
            ("usage_type", "PRESERVATION_MASTER") => "Master",
            ("usage_type", "DERIVATIVE_COPY") => "Derivative Copy",
            ("usage_type", "AUXILIARY") => "Auxiliary",
            ("active", "true") => "Active",
            ("active", "false") => "Inactive",
            ("repository", code) => return Some(format!("Remote repository {code}")),
            _ => return None,
        };
        Some(known.to_owned())
    }

    pub fn key(&self, key: &str) -> Option<ApiKey> {
        if self.api_keys.is_empty() {
            return (key == Self::SANDBOX_KEY).then(|| ApiKey {
                key: key.to_owned(),
                read_only: false,
            });
        }
        self.api_keys.iter().find(|k| k.key == key).cloned()
    }
}

impl Config {
    /// Serves as the Alma a probe captured (`--seed-from`): its institution (so its OAI
    /// identifiers), its publishing set, and OAI-PMH pages that end where its first page ended.
    pub fn adopt(&mut self, capture: &formats::probe::Capture) {
        let site = &capture.index.site;
        if let Some(i) = &site.alma_institution {
            self.institution = i.clone();
        }
        self.publishing_set = site.alma_publishing_set.clone();
        self.page_size = formats::probe::seed::page_size(
            capture,
            formats::probe::System::AlmaOai,
            "oai_dc",
            self.page_size,
        )
        .min(900);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_match_as_expected() {
        let lo = Cidr::parse("127.0.0.0/8").expect("cidr");
        assert!(lo.contains("127.1.2.3".parse().expect("ip")));
        assert!(!lo.contains("10.0.0.1".parse().expect("ip")));
        assert!(
            lo.contains("::ffff:127.0.0.1".parse().expect("ip")),
            "v4-mapped v6"
        );
        assert!(
            Cidr::parse("::1")
                .expect("cidr")
                .contains("::1".parse().expect("ip"))
        );
        assert!(Cidr::parse("1.2.3.4/33").is_err());
    }
}
